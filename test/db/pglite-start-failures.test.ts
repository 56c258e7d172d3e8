/**
 * `npm start` on a PGLITE_DIR it cannot use stops at once with one line naming PGLITE_DIR and a
 * cause a person can act on (src/config/database-failure.ts, src/db/pglite-directory.ts). An outside
 * audit, reproduced twice:
 * - PGLITE_DIR under /proc hung forever at ~70% CPU, never listening, logging nothing: Node 20's
 *   recursive mkdir loops there (mkdir("/proc/x") = ENOENT, mkdir("/proc") = EEXIST, repeat).
 */
import { spawnSync, type SpawnSyncOptions } from "node:child_process";
import { describe, expect, it } from "vitest";

/** The entry point run to its exit, as `npm start` runs it. */
function runToExit(env: Record<string, string>, options: SpawnSyncOptions = {}) {
  return spawnSync(process.execPath, ["--import", "tsx", "src/main.ts"], {
    env: { ...process.env, HOST: "127.0.0.1", PORT: "0", CONSOLE_BUILD: "off", LOG_LEVEL: "info", ...env },
    encoding: "utf8",
    timeout: 30_000,
    ...options,
  });
}

/** The start.database_failed lines of a run's output. */
function fatalLines(stdout: string): Array<Record<string, unknown>> {
  return stdout
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((line) => line.event === "start.database_failed");
}

describe("npm start on a PGLITE_DIR it cannot use", () => {
  it("stops at once, naming PGLITE_DIR and the cause, when the directory cannot be created under /proc", () => {
    const dir = `/proc/graphql-credits-test-${process.pid}-${Date.now()}`;
    const started = Date.now();
    const run = runToExit({ PGLITE_DIR: dir });
    expect(run.signal, `still running after 30 s:\n${run.stdout}${run.stderr}`).toBeNull();
    expect(run.status).toBe(1);
    expect(Date.now() - started).toBeLessThan(20_000);
    const fatal = fatalLines(String(run.stdout));
    expect(fatal).toEqual([expect.objectContaining({ variable: "PGLITE_DIR", target: dir })]);
    expect(fatal[0].msg).toBe(
      `PGLITE_DIR: could not open the embedded database in "${dir}" (cannot create directory "${dir}": "/proc" takes no new directories (no such file or directory))`,
    );
  });
});
