/**
 * The README's first command as a user meets it: the entry point starts with no configuration on
 * the embedded database, prints a banner with a demo subscription and tokens that work, refuses a
 * bad setting by name (a database it cannot open too, in one log line), and stops gracefully on
 * SIGTERM while a request is in flight.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { afterAll, describe, expect, it } from "vitest";
import { postGraphQL } from "../helpers/test-app.js";
import { spawnServer } from "../helpers/spawn-server.js";
import { closedPort } from "../helpers/closed-port.js";

const dataDir = mkdtempSync(join(tmpdir(), "gc-start-"));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

function bannerValue(output: string, label: RegExp): string {
  const line = output.split("\n").find((l) => label.test(l));
  if (!line) throw new Error(`banner has no ${label}:\n${output}`);
  return line.trim().split(/\s+/).at(-1)!;
}

describe("npm start", () => {
  it("starts on PGlite with no configuration, and the banner's tokens work", async () => {
    const server = await spawnServer({ PGLITE_DIR: join(dataDir, "pglite"), SIMULATE_FAILURES: "1", SIMULATE_SLOW_MS: "1500" });
    try {
      const output = server.output();
      expect(output).toMatch(/DEVELOPMENT MODE/);
      const subscriptionId = bannerValue(output, /Demo subscription/);
      const userToken = bannerValue(output, /User token/);
      const adminToken = bannerValue(output, /Admin token/);

      const health = await fetch(`${server.url}/health`);
      expect(health.status).toBe(200);

      const viewer = await postGraphQL(`${server.url}/graphql`, "{ viewer { id subscriptions { id balances { type balance } } } }", {}, { token: userToken });
      expect(viewer.body.data.viewer).toEqual({
        id: "demo-user",
        subscriptions: [
          {
            id: subscriptionId,
            balances: [
              { type: "ai", balance: 100 },
              { type: "leads", balance: 100 },
              { type: "skiptrace", balance: 100 },
            ],
          },
        ],
      });
      const admin = await postGraphQL(`${server.url}/graphql`, "{ viewer { isAdmin } }", {}, { token: adminToken });
      expect(admin.body.data.viewer.isAdmin).toBe(true);

      // SIGTERM while a slow metered call is running: the call finishes, then the process exits 0.
      const inFlight = postGraphQL(
        `${server.url}/graphql`,
        `mutation($s: ID!) { searchLeads(subscriptionId: $s, input: { query: "x", limit: 2 }) { leads { name } } }`,
        { s: subscriptionId },
        { token: userToken, headers: { "x-simulate-failure": "slow" } },
      );
      await new Promise((r) => setTimeout(r, 300));
      server.child.kill("SIGTERM");
      const finished = await inFlight;
      expect(finished.status).toBe(200);
      // Held 2, settled at the leads found (at least 1), the rest released.
      const found = finished.body.data.searchLeads.leads.length;
      expect(finished.body.extensions!.credits.charges[0]).toMatchObject({ charged: 2, cost: Math.max(1, found), remaining: 100 - Math.max(1, found) });
      expect(await server.exited).toBe(0);
      expect(server.output()).toMatch(/shutting down/);
    } finally {
      server.child.kill("SIGKILL");
    }
  });

  it("keeps its data across restarts and does not seed a second demo subscription", async () => {
    const server = await spawnServer({ PGLITE_DIR: join(dataDir, "pglite") });
    try {
      const userToken = bannerValue(server.output(), /User token/);
      const viewer = await postGraphQL(`${server.url}/graphql`, "{ viewer { subscriptions { balances { type balance } } } }", {}, { token: userToken });
      expect(viewer.body.data.viewer.subscriptions).toHaveLength(1);
      // What the first run's lead search cost (simulated, deterministic: "x" with limit 2 finds 1).
      expect(viewer.body.data.viewer.subscriptions[0].balances[1]).toEqual({ type: "leads", balance: 99 });
    } finally {
      server.child.kill("SIGTERM");
      await server.exited;
    }
  });

  it("refuses a bad setting, naming the variable", () => {
    const run = spawnSync(process.execPath, ["--import", "tsx", "src/main.ts"], {
      env: { ...process.env, PORT: "not-a-port", PGLITE_DIR: "memory://" },
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/PORT: /);
    expect(run.stderr).not.toMatch(/at .*\.ts:\d+/);
  });

  /** Runs src/main.ts to its end (it is expected to stop at start) with `env` over this process's. */
  function runToExit(env: Record<string, string>) {
    return spawnSync(process.execPath, ["--import", "tsx", "src/main.ts"], {
      env: { ...process.env, HOST: "127.0.0.1", PORT: "0", CONSOLE_BUILD: "off", LOG_LEVEL: "info", ...env },
      encoding: "utf8",
      timeout: 30_000,
    });
  }

  // An outside audit: PGLITE_DIR='' crashed with "ENOENT: mkdir ''" and a stack trace, naming no variable.
  it("refuses an empty PGLITE_DIR, naming it, without a stack trace", () => {
    const run = runToExit({ PGLITE_DIR: "" });
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/^Invalid configuration:\n {2}PGLITE_DIR: /);
    expect(run.stderr + run.stdout).not.toMatch(/ENOENT|\n\s+at /);
  });

  // An outside audit: two servers on one PGLITE_DIR both started and served, each with its own copy
  // of the database in memory, and the writes of one were gone after a restart.
  it("refuses a second server on a PGLITE_DIR in use, naming the process that has it (takeover after a crash: test/db/pglite-directory-lock.test.ts)", async () => {
    const dir = join(dataDir, "pglite-shared");
    const first = await spawnServer({ PGLITE_DIR: dir });
    try {
      const second = runToExit({ PGLITE_DIR: dir });
      expect(second.status).toBe(1);
      const fatal = second.stdout
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line) as { level: number; msg: string })
        .filter((line) => line.level >= 50);
      expect(fatal).toEqual([expect.objectContaining({ event: "start.database_failed", variable: "PGLITE_DIR", target: dir })]);
      expect(fatal[0].msg).toContain(`the process ${first.child.pid} has it open`);
      expect(second.stdout + second.stderr).not.toMatch(/\n\s+at /);
      expect((await fetch(`${first.url}/health`)).status).toBe(200);
    } finally {
      first.child.kill("SIGTERM");
      await first.exited;
    }
  });

  // An outside audit: an unreachable DATABASE_URL killed the process with pg-pool's raw ECONNREFUSED stack.
  it("stops with one log line naming DATABASE_URL, its host and port and the cause, when the database cannot be reached", async () => {
    const port = await closedPort();
    const run = runToExit({ DATABASE_URL: `postgres://postgres:hunter2-pw@127.0.0.1:${port}/x`, DATABASE_DIRECT_URL: "" });
    expect(run.status).toBe(1);
    expect(run.stderr).toBe("");
    const lines = run.stdout.trim().split("\n").map((line) => JSON.parse(line) as { level: number; msg: string; variable?: string });
    const fatal = lines.filter((line) => line.level >= 50);
    expect(fatal).toEqual([
      expect.objectContaining({
        level: 60,
        event: "start.database_failed",
        variable: "DATABASE_URL",
        target: `127.0.0.1:${port}/x`,
        cause: "connection refused",
        msg: `DATABASE_URL: cannot connect to PostgreSQL at 127.0.0.1:${port}/x (connection refused)`,
      }),
    ]);
    expect(run.stdout).not.toMatch(/hunter2|\n\s+at /);
  });
});
