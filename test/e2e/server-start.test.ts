/**
 * The README's first command as a user meets it: the entry point starts with no configuration on
 * the embedded database, prints a banner with a demo subscription and tokens that work, refuses a
 * bad setting by name (a database it cannot open too, in one log line), and stops gracefully on
 * SIGTERM while a request is in flight: on PostgreSQL too, answering every request that reached it
 * before or during the drain, and refunding, before it exits, the holds of calls that outlast the grace.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { createServer as createNetServer, type AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { sql } from "drizzle-orm";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { postGraphQL } from "../helpers/test-app.js";
import { spawnServer } from "../helpers/spawn-server.js";
import { closedPort } from "../helpers/closed-port.js";
import { createPostgresDatabase, type TestDatabase } from "../helpers/databases.js";
import { postgresAvailable } from "../helpers/services.js";
import { queryRows } from "../../src/db/database.js";
import { auditLedger } from "../../src/ledger/audit.js";
import { balancesOfSubscriptions } from "../../src/ledger/balances.js";
import { RECOVERY_SHUTDOWN_REASON } from "../../src/recovery/recovery-pass.js";

const dataDir = mkdtempSync(join(tmpdir(), "gc-start-"));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

function bannerValue(output: string, label: RegExp): string {
  const line = output.split("\n").find((l) => label.test(l));
  if (!line) throw new Error(`banner has no ${label}:\n${output}`);
  return line.trim().split(/\s+/).at(-1)!;
}

describe("npm start", () => {
  // Through `npm start` itself, as the README runs it. An outside audit: SIGTERM to `npm start` (what
  // a container runtime or a process manager sends) stopped npm and its shell, and left the server
  // running, orphaned, still serving.
  it("starts on PGlite with no configuration, the banner's tokens work, and SIGTERM to `npm start` stops it once its calls are answered", async () => {
    const server = await spawnServer({ PGLITE_DIR: join(dataDir, "pglite"), SIMULATE_FAILURES: "1", SIMULATE_SLOW_MS: "1500" }, 60_000, true);
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
      await server.exited;
      await expect.poll(() => server.output(), { timeout: 15_000 }).toContain('"msg":"stopped"');
      expect(server.output()).toMatch(/shutting down/);
      await expect(fetch(`${server.url}/health`)).rejects.toThrow();
    } finally {
      server.child.kill("SIGKILL");
    }
  });

  /** Runs src/main.ts to its end (it is expected to stop at start) with `env` over this process's. */
  function runToExit(env: Record<string, string>) {
    return spawnSync(process.execPath, ["--import", "tsx", "src/main.ts"], {
      env: { ...process.env, HOST: "127.0.0.1", PORT: "0", CONSOLE_BUILD: "off", LOG_LEVEL: "info", ...env },
      encoding: "utf8",
      timeout: 55_000,
    });
  }

  // An outside audit: two servers on one PGLITE_DIR both started and served, each with its own copy
  // of the database in memory, and the writes of one were gone after a restart. (Takeover after a
  // crash: test/db/pglite-directory-lock.test.ts.)
  it("keeps its data across restarts, does not seed a second demo subscription, and refuses a second server on its PGLITE_DIR, naming the process", async () => {
    const dir = join(dataDir, "pglite");
    const server = await spawnServer({ PGLITE_DIR: dir });
    try {
      const userToken = bannerValue(server.output(), /User token/);
      const viewer = await postGraphQL(`${server.url}/graphql`, "{ viewer { subscriptions { balances { type balance } } } }", {}, { token: userToken });
      expect(viewer.body.data.viewer.subscriptions).toHaveLength(1);
      // What the first run's lead search cost (simulated, deterministic: "x" with limit 2 finds 1).
      expect(viewer.body.data.viewer.subscriptions[0].balances[1]).toEqual({ type: "leads", balance: 99 });

      const second = runToExit({ PGLITE_DIR: dir });
      expect(second.status).toBe(1);
      const fatal = second.stdout
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line) as { level: number; msg: string })
        .filter((line) => line.level >= 50);
      expect(fatal).toEqual([expect.objectContaining({ event: "start.database_failed", variable: "PGLITE_DIR", target: dir })]);
      expect(fatal[0].msg).toContain(`the process ${server.child.pid} has it open`);
      expect(second.stdout + second.stderr).not.toMatch(/\n\s+at /);
      expect((await fetch(`${server.url}/health`)).status).toBe(200);
    } finally {
      server.child.kill("SIGTERM");
      await server.exited;
    }
  });

  // An outside audit: PGLITE_DIR='' crashed with "ENOENT: mkdir ''" and a stack trace, naming no variable.
  it("refuses bad settings, naming each variable (an empty PGLITE_DIR too), without a stack trace", () => {
    const run = runToExit({ PORT: "not-a-port", PGLITE_DIR: "" });
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/^Invalid configuration:\n/);
    expect(run.stderr).toMatch(/\n {2}PORT: /);
    expect(run.stderr).toMatch(/\n {2}PGLITE_DIR: /);
    expect(run.stderr + run.stdout).not.toMatch(/ENOENT|\n\s+at |at .*\.ts:\d+/);
  });

  // An outside audit: a port in use or a host that cannot be listened on ended in node's uncaught
  // exception, with ws's "Internal error emitted on the WebSocket server" and two stack traces.
  it("stops with one log line naming PORT when the port is in use", async () => {
    const taken = createNetServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    const port = (taken.address() as AddressInfo).port;
    try {
      // One process; what each listen error is called (HOST's too) is test/unit/listen-failure.test.ts's.
      const cases: { env: Record<string, string>; variable: string; msg: string }[] = [
        { env: { PORT: String(port) }, variable: "PORT", msg: `PORT: ${port} is already in use on 127.0.0.1` },
      ];
      for (const { env, variable, msg } of cases) {
        const run = runToExit({ PGLITE_DIR: "memory://", ...env });
        expect(run.status, run.stderr).toBe(1);
        expect(run.stderr).toBe("");
        const fatal = run.stdout
          .trim()
          .split("\n")
          .map((line) => JSON.parse(line) as { level: number; msg: string })
          .filter((line) => line.level >= 50);
        expect(fatal).toEqual([expect.objectContaining({ event: "start.listen_failed", variable })]);
        expect(fatal[0].msg).toContain(msg);
      }
    } finally {
      taken.close();
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

describe.skipIf(!postgresAvailable)("npm start on PostgreSQL: SIGTERM", () => {
  const SEARCH = `mutation($s: ID!) { searchLeads(subscriptionId: $s, input: { query: "x", limit: 2 }) { leads { name } } }`;
  let database: TestDatabase;
  beforeEach(async () => {
    database = await createPostgresDatabase(4);
  });
  afterEach(async () => {
    await database?.dispose();
  });

  /** `npm start` on the fresh database: development mode (its banner's demo subscription and tokens), simulated failures on. */
  function start(env: Record<string, string> = {}) {
    // NODE_ENV as `npm start` has it: the test runner's "test" would turn Apollo's own signal handlers off.
    return spawnServer({ NODE_ENV: "development", DATABASE_URL: database.url!, DATABASE_DIRECT_URL: "", CONSOLE_BUILD: "off", SIMULATE_FAILURES: "1", ...env });
  }

  /** One metered call; a connection that fails (reset, refused) is an outcome too, not a throw. */
  async function search(url: string, subscriptionId: string, token: string, slow: boolean) {
    try {
      const res = await fetch(`${url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}`, ...(slow ? { "x-simulate-failure": "slow" } : {}) },
        body: JSON.stringify({ query: SEARCH, variables: { s: subscriptionId } }),
      });
      const text = await res.text();
      return { status: res.status, text, body: JSON.parse(text) as { data?: { searchLeads?: { leads: unknown[] } }; errors?: unknown[]; extensions?: any } };
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      return { status: 0, text: `${(err as Error).message}: ${cause?.code ?? cause?.message ?? ""}`, body: undefined };
    }
  }

  const pendingCount = async () => Number((await queryRows<{ n: number }>(database.db, sql`select count(*)::int as n from pending_charges`))[0].n);

  // An outside audit: of 50 calls sent before SIGTERM (half of them slow), 5 got ECONNRESET (the
  // listener closed with connections in its backlog, idle keep-alive sockets closed under requests
  // in transit) and 1 a masked 500 ("A GraphQL operation was received during server shutdown":
  // Apollo's own SIGTERM handler stopped it while the HTTP server still drained).
  it("answers every call sent before the signal or during the drain, then exits 0 with nothing pending", async () => {
    const server = await start();
    try {
      const subscriptionId = bannerValue(server.output(), /Demo subscription/);
      const token = bannerValue(server.output(), /User token/);
      const before = Array.from({ length: 30 }, (_, i) => search(server.url, subscriptionId, token, i % 2 === 0));
      await sleep(300);
      server.child.kill("SIGTERM");
      // While the slow calls still run (3 s), the server drains: calls that reach it now are served too.
      await sleep(400);
      const during = Array.from({ length: 6 }, () => search(server.url, subscriptionId, token, false));
      const outcomes = await Promise.all([...before, ...during]);
      // Every one answered 200 with its result: none reset, refused or failed (500).
      const failed = outcomes.filter((o) => o.status !== 200 || o.body?.errors !== undefined || !Array.isArray(o.body?.data?.searchLeads?.leads));
      expect(failed.map((o) => `${o.status} ${o.text.slice(0, 300)}`)).toEqual([]);
      expect(await server.exited, server.output()).toBe(0);
      expect(server.output()).not.toMatch(/received during server shutdown/);

      expect(await pendingCount()).toBe(0);
      expect(await auditLedger(database.db)).toMatchObject({ ok: true, mismatches: [] });
      const cost = outcomes.reduce((sum, outcome) => sum + (outcome.body!.extensions.credits.charges[0].cost as number), 0);
      const [, leads] = await balancesOfSubscriptions(database.db, [subscriptionId]);
      expect(leads).toMatchObject({ creditType: "leads", balance: 100 - cost });
    } finally {
      server.child.kill("SIGKILL");
    }
  }, 60_000);

  // An outside audit: SIGTERM with calls running longer than the grace (10 s) exited with their holds
  // still pending, left to another instance's recovery pass once the lease expired (or forever, with
  // no other instance): "a graceful stop behaves like a crash".
  it("refunds, before it exits, the holds of calls that outlast the grace", async () => {
    const server = await start({ SIMULATE_SLOW_MS: "20000" });
    try {
      const subscriptionId = bannerValue(server.output(), /Demo subscription/);
      const token = bannerValue(server.output(), /User token/);
      const calls = Array.from({ length: 4 }, () => search(server.url, subscriptionId, token, true));
      const deadline = Date.now() + 15_000;
      while ((await pendingCount()) < 4) {
        if (Date.now() > deadline) throw new Error(`the 4 holds were not taken:\n${server.output()}`);
        await sleep(50);
      }
      server.child.kill("SIGTERM");
      // The grace (10 s), then the refunds; far less than the calls' 20 s.
      expect(await server.exited, server.output()).toBe(0);
      await Promise.all(calls);

      expect(await pendingCount()).toBe(0);
      const [, leads] = await balancesOfSubscriptions(database.db, [subscriptionId]);
      expect(leads).toMatchObject({ creditType: "leads", balance: 100 });
      // Refunded by the stopping server itself, not left to another instance's pass.
      const refunds = await queryRows<{ reason: string }>(database.db, sql`select reason from credit_ledger where kind = 'REFUND'`);
      expect(refunds.map((r) => r.reason)).toEqual(Array(4).fill(RECOVERY_SHUTDOWN_REASON));
      expect(await auditLedger(database.db)).toMatchObject({ ok: true, mismatches: [] });
      expect(server.output()).not.toMatch(/unhandledRejection|uncaughtException|\n\s+at /);
    } finally {
      server.child.kill("SIGKILL");
    }
  }, 60_000);
});
