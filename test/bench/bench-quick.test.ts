/**
 * `npm run bench -- --quick` as a smoke test: the whole benchmark (fresh database, the real server
 * as its own process, every scenario, the soak, the integrity check) runs and writes well-formed
 * results. Its numbers are not checked: a few seconds on a shared machine measure nothing, and the
 * goals are for the full run (bench/README.md).
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { postgresAvailable, REQUIRE_SERVICES, TEST_DATABASE_URL } from "../helpers/services.js";
import { requirePgBouncer } from "../helpers/pgbouncer.js";

/** The metered scenario through PgBouncer runs where pgbouncer is installed (always under CI). */
const pooled = postgresAvailable && requirePgBouncer(REQUIRE_SERVICES) !== undefined;
const SCENARIOS = ["noop", "bare-sql", "metered", "metered-three", "metered-live", "metered-hot", "preview", "raw-debit", ...(pooled ? ["metered-pooled"] : [])];

/**
 * The bench runs this file started and that have not exited. A test that times out leaves its bench
 * running (vitest does not know the child): with its server, PgBouncer and 90 database connections it
 * starved the runs after it, which then timed out too. afterEach interrupts them (SIGINT: the bench
 * stops its servers and drops its database, as on Ctrl-C).
 */
const running = new Set<ReturnType<typeof spawn>>();

function runQuickBench(out: string, extra: string[] = []): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "bench/run.ts", "--quick", "--out", out, ...extra], {
      env: { ...process.env, BENCH_DATABASE_URL: TEST_DATABASE_URL },
      stdio: ["ignore", "pipe", "pipe"],
    });
    running.add(child);
    child.once("exit", () => running.delete(child));
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    child.once("error", reject);
    child.once("exit", (code) => resolve({ code, output }));
  });
}

describe.skipIf(!postgresAvailable)("npm run bench -- --quick", () => {
  const dir = mkdtempSync(join(tmpdir(), "bench-quick-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  afterEach(async () => {
    await Promise.all(
      [...running].map(
        (child) =>
          new Promise<void>((resolve) => {
            child.once("exit", () => resolve());
            child.kill("SIGINT");
            setTimeout(() => {
              child.kill("SIGKILL");
              resolve();
            }, 15_000).unref();
          }),
      ),
    );
  });

  it("completes and writes well-formed results to --out", { timeout: 240_000 }, async () => {
    const out = join(dir, "results.json");
    const { code, output } = await runQuickBench(out);
    expect(code, output).toBe(0);

    const results = JSON.parse(readFileSync(out, "utf8"));
    expect(results.kind).toBe("quick");
    expect(results.machine).toMatchObject({ cpus: expect.any(Number), cpuModel: expect.any(String) });
    expect(results.versions).toMatchObject({ node: process.version, postgres: expect.any(String), autocannon: "9.0.0" });

    // Every scenario ran once, answered every request, and has its figures.
    expect(results.runs.map((r: { scenario: string }) => r.scenario).sort()).toEqual([...SCENARIOS].sort());
    for (const run of results.runs) {
      expect(run).toMatchObject({ requestsPerSecond: expect.any(Number), p50Ms: expect.any(Number), p99Ms: expect.any(Number), failures: 0 });
      expect(run.requests).toBeGreaterThan(0);
    }
    expect(Object.keys(results.scenarios).sort()).toEqual([...SCENARIOS].sort());

    // The ratios the goals are about are all there (whether they are met is the full run's business).
    expect(Object.keys(results.ratios).sort()).toEqual(
      [
        "live_push_p99_ms",
        "metered_hot_over_metered",
        "metered_live_over_metered",
        "metered_three_over_metered",
        "metered_over_bare_sql",
        "metered_pooled_over_metered",
        "p99_metered_over_bare_sql",
        "preview_over_noop",
        "rss_mb",
      ].sort(),
    );
    for (const [key, value] of Object.entries(results.ratios)) {
      if (key === "metered_pooled_over_metered" && !pooled) {
        expect(value).toBeNull();
        expect(results.skipped["metered-pooled"]).toMatch(/pgbouncer is not installed/);
      } else expect(value, key).toEqual(expect.any(Number));
    }
    expect(results.soak.samplesMb.length).toBeGreaterThan(1);
    // The soak's verdict reads the memory the server keeps, right after full collections at each end.
    expect(results.soak).toMatchObject({ warmupSeconds: 1, growthMb: expect.any(Number), growing: expect.any(Boolean) });
    for (const key of ["collectedRssMb", "collectedHeapMb", "keptMb"]) {
      expect(results.soak[key], key).toHaveLength(2);
      for (const mb of results.soak[key]) expect(mb, key).toBeGreaterThan(0);
    }

    // The live-balance scenario: its subscribers received pushes, with latencies and the server's memory.
    const live = results.scenarios["metered-live"];
    expect(live.push).toMatchObject({ subscribers: 1000, p50Ms: expect.any(Number), p99Ms: expect.any(Number) });
    expect(live.push.events).toBeGreaterThan(0);
    // Split by what the push interval did; the one round's parts add up to its events.
    expect(live.push.atOnce.events + live.push.heldBack.events).toBe(live.push.events);
    expect(live.push.atOnce.p99Ms).toBeGreaterThanOrEqual(0);
    expect(live.rssMb).toBeGreaterThan(0);
    expect(live.rssCollectedMb).toBeGreaterThan(0);

    // The load left the ledger consistent and every charge settled.
    expect(results.integrity).toMatchObject({ auditMismatches: 0, pendingCharges: 0 });
    expect(results.integrity.debits).toBeGreaterThan(0);
  });

  it("--grants-per-balance 5 runs the metered loads on five grants per balance and leaves a clean ledger", { timeout: 180_000 }, async () => {
    const out = join(dir, "results-grants.json");
    const { code, output } = await runQuickBench(out, ["--grants-per-balance", "5", "--only", "bare-sql,metered,metered-hot"]);
    expect(code, output).toBe(0);
    const results = JSON.parse(readFileSync(out, "utf8"));
    expect(results.settings.grantsPerBalance).toBe(5);
    expect(results.runs.map((r: { scenario: string }) => r.scenario).sort()).toEqual(["bare-sql", "metered", "metered-hot"]);
    for (const run of results.runs) expect(run).toMatchObject({ failures: 0 });
    expect(results.ratios.metered_over_bare_sql).toEqual(expect.any(Number));
    expect(results.ratios.metered_hot_over_metered).toEqual(expect.any(Number));
    expect(results.integrity).toMatchObject({ auditMismatches: 0, pendingCharges: 0 });
  });
});
