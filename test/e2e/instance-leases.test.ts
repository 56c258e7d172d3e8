/**
 * Instance leases with real server processes on PostgreSQL (issue 14, "Done means"):
 * - a server killed with SIGKILL in the middle of five slow calls: another instance, with default
 *   settings, refunds all five holds within 25 s, and the calls' Idempotency-Keys then run again at
 *   once (charged once each), instead of answering CONFLICT until CHARGE_SETTLE_TIMEOUT;
 * - with INSTANCE_LEASE_TTL=2s, a live call that takes 8 s is charged exactly once and never refunded;
 * - a hold on a live instance older than CHARGE_SETTLE_TIMEOUT is refunded with a FAILED_TRANSACTION
 *   alert, and the call finishing later is not charged.
 */
import { sql } from "drizzle-orm";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createPostgresDatabase, type TestDatabase } from "../helpers/databases.js";
import { postgresAvailable } from "../helpers/services.js";
import { spawnServer, type SpawnedServer } from "../helpers/spawn-server.js";
import { fundedSubscription, postGraphQL } from "../helpers/test-app.js";
import { mintToken } from "../../src/auth/mint.js";
import { queryRows } from "../../src/db/database.js";
import { auditLedger } from "../../src/ledger/audit.js";
import { RECOVERY_OVERDUE_REASON, RECOVERY_REFUND_REASON } from "../../src/recovery/recovery-pass.js";

const JWT_SECRET = "lease-test-secret-that-is-long-enough-for-hs256";
const RUN_AI = `mutation Run($sub: ID!, $prompt: String!) { runAiTask(subscriptionId: $sub, input: { prompt: $prompt, maxTokens: 16 }) { output } }`;

async function waitFor(condition: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe.skipIf(!postgresAvailable)("instance leases with real servers (PostgreSQL)", () => {
  let database: TestDatabase;
  const servers: SpawnedServer[] = [];

  /** A server on the test database; only what the test names differs from the defaults. */
  async function start(env: Record<string, string> = {}): Promise<SpawnedServer> {
    const server = await spawnServer({
      NODE_ENV: "test",
      DATABASE_URL: database.url!,
      DATABASE_POOL_SIZE: "4",
      JWT_SECRET,
      LOG_LEVEL: "info",
      SIMULATE_FAILURES: "1",
      RATE_LIMIT_DEFAULT: "100000/1m",
      ...env,
    });
    servers.push(server);
    return server;
  }

  async function count(query: ReturnType<typeof sql>): Promise<number> {
    return Number((await queryRows<{ n: number }>(database.db, query))[0].n);
  }
  const pending = (sub: string) => count(sql`select count(*)::int as n from pending_charges where subscription_id = ${sub}::uuid`);
  const entries = (sub: string, kind: string) =>
    count(sql`select count(*)::int as n from credit_ledger where subscription_id = ${sub}::uuid and kind = ${kind}`);
  const slowCall = (server: SpawnedServer, sub: string, token: string, prompt: string, headers: Record<string, string> = {}) =>
    postGraphQL(`${server.url}/graphql`, RUN_AI, { sub, prompt }, { token, headers: { "x-simulate-failure": "slow", ...headers } });

  beforeAll(async () => {
    database = await createPostgresDatabase(8);
  });
  afterEach(async () => {
    for (const server of servers.splice(0)) {
      if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill("SIGKILL");
      await server.exited;
    }
  });
  afterAll(() => database?.dispose());

  it("five holds of a server killed mid-call are refunded within 25 s by another instance with default settings; their Idempotency-Keys then run again, charged once", async () => {
    const sub = await fundedSubscription(database, "lease-kill-owner", { ai: 100 });
    const token = await mintToken({ sub: "lease-kill-owner", secret: JWT_SECRET });
    const [doomed, survivor] = await Promise.all([start({ SIMULATE_SLOW_MS: "120000" }), start()]);

    const keyOf = (i: number) => ({ "idempotency-key": `lease-kill-${sub}-${i}` });
    const calls = Array.from({ length: 5 }, (_, i) => slowCall(doomed, sub, token, `slow ${i}`, keyOf(i)).catch(() => "connection lost"));
    await waitFor(async () => (await pending(sub)) === 5, 30_000, "the five slow calls to be held");

    doomed.child.kill("SIGKILL");
    const killedAt = Date.now();
    expect(await doomed.exited).toBe("SIGKILL");
    expect(await Promise.all(calls)).toEqual(Array(5).fill("connection lost"));

    await waitFor(async () => (await pending(sub)) === 0, 25_000 - (Date.now() - killedAt), "the other instance to refund the five holds");
    const reasons = await queryRows<{ reason: string; n: number }>(
      database.db,
      sql`select reason, count(*)::int as n from credit_ledger where subscription_id = ${sub}::uuid and kind = 'REFUND' group by reason`,
    );
    expect(reasons.map((r) => ({ ...r, n: Number(r.n) }))).toEqual([{ reason: RECOVERY_REFUND_REASON, n: 5 }]);
    const [balance] = await queryRows<{ balance: number }>(
      database.db,
      sql`select balance from credit_balances where subscription_id = ${sub}::uuid and credit_type = 'ai'`,
    );
    expect(Number(balance.balance)).toBe(100);
    expect((await auditLedger(database.db)).ok).toBe(true);

    // The clients retry with their keys (what the keys are for). The calls died and their holds are
    // refunded, so each runs again, now, and is charged once: not CONFLICT until CHARGE_SETTLE_TIMEOUT.
    const retries = await Promise.all(
      Array.from({ length: 5 }, (_, i) => postGraphQL(`${survivor.url}/graphql`, RUN_AI, { sub, prompt: `slow ${i}` }, { token, headers: keyOf(i) })),
    );
    expect(retries.map((r) => r.status)).toEqual(Array(5).fill(200));
    expect(retries.map((r) => r.body.extensions?.credits?.charges?.[0]?.replayed)).toEqual(Array(5).fill(undefined));
    expect(await entries(sub, "DEBIT")).toBe(10);
    expect(await entries(sub, "REFUND")).toBe(5);
    expect((await auditLedger(database.db)).ok).toBe(true);
    // And a second retry replays the first's result without paying again.
    const replay = await postGraphQL(`${survivor.url}/graphql`, RUN_AI, { sub, prompt: "slow 0" }, { token, headers: keyOf(0) });
    expect(replay.body.extensions?.credits?.charges?.[0]?.replayed).toBe(true);
    expect(await entries(sub, "DEBIT")).toBe(10);
  }, 120_000);

  it("with INSTANCE_LEASE_TTL=2s a live call that takes 8 s is charged exactly once and never refunded", async () => {
    const sub = await fundedSubscription(database, "lease-live-owner", { ai: 100 });
    const token = await mintToken({ sub: "lease-live-owner", secret: JWT_SECRET });
    const env = { INSTANCE_LEASE_TTL: "2s", RECOVERY_INTERVAL: "1s", SIMULATE_SLOW_MS: "8000" };
    // Two instances, each running recovery every second, both judging the other's holds.
    const [server] = await Promise.all([start(env), start(env)]);

    const started = Date.now();
    const res = await slowCall(server, sub, token, "long task");
    expect(Date.now() - started).toBeGreaterThanOrEqual(8_000);
    expect(res.status).toBe(200);
    expect(res.body.errors).toBeUndefined();
    // Two more recovery passes after the call, on both instances: still nothing refunded.
    await new Promise((resolve) => setTimeout(resolve, 2_500));

    expect(await entries(sub, "DEBIT")).toBe(1);
    expect(await entries(sub, "REFUND")).toBe(0);
    expect(await pending(sub)).toBe(0);
    // Both instances hold a live lease of the 2 s they were given.
    expect(await count(sql`select count(*)::int as n from instance_leases where expires_at > now()`)).toBeGreaterThanOrEqual(2);
  }, 120_000);

  it("a hold on a live instance older than CHARGE_SETTLE_TIMEOUT is refunded with an alert, and its late success is not charged", async () => {
    const sub = await fundedSubscription(database, "lease-overdue-owner", { ai: 100 });
    const token = await mintToken({ sub: "lease-overdue-owner", secret: JWT_SECRET });
    const server = await start({ CHARGE_SETTLE_TIMEOUT: "2s", RECOVERY_INTERVAL: "500ms", SIMULATE_SLOW_MS: "8000" });

    const call = slowCall(server, sub, token, "overdue task");
    await waitFor(async () => (await entries(sub, "REFUND")) === 1, 30_000, "the overdue hold to be refunded");
    const [refund] = await queryRows<{ reason: string }>(
      database.db,
      sql`select reason from credit_ledger where subscription_id = ${sub}::uuid and kind = 'REFUND'`,
    );
    expect(refund.reason).toBe(RECOVERY_OVERDUE_REASON);
    await waitFor(
      async () =>
        (await count(
          sql`select count(*)::int as n from credit_alerts where subscription_id = ${sub}::uuid and kind = 'FAILED_TRANSACTION' and details->>'stage' = 'settle-timeout'`,
        )) === 1,
      10_000,
      "the settle-timeout alert",
    );

    // The call still finishes: it is answered, but never charged a second time.
    expect((await call).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(await entries(sub, "DEBIT")).toBe(1);
    expect(await entries(sub, "REFUND")).toBe(1);
    const [balance] = await queryRows<{ balance: number }>(
      database.db,
      sql`select balance from credit_balances where subscription_id = ${sub}::uuid and credit_type = 'ai'`,
    );
    expect(Number(balance.balance)).toBe(100);
  }, 120_000);
});
