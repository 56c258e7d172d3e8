/**
 * creditBalanceChanged over a real WebSocket (graphql-ws on /graphql): a debit, an admin grant and a
 * recovery refund reach a subscriber; on PostgreSQL the subscriber is on another server instance
 * than the debit (LISTEN/NOTIFY between them). Owners and admins only: a stranger gets one error and
 * nothing else, a bad or missing token closes the socket with 4401.
 */
import { sql } from "drizzle-orm";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../../src/db/database.js";
import { changeBalance } from "../../src/ledger/change-balance.js";
import { holdGroups } from "../../src/ledger/hold.js";
import { runRecoveryPass } from "../../src/recovery/recovery-pass.js";
import { createLogger } from "../../src/observability/logger.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { liveClient, type LiveClient } from "../helpers/live-client.js";
import { TEST_DATABASE_URL } from "../helpers/services.js";
import { adminToken, fundedSubscription, startTestServer, userToken, type TestServer } from "../helpers/test-app.js";

const BALANCE_CHANGED = `subscription ($s: ID!, $types: [String!]) {
  creditBalanceChanged(subscriptionId: $s, types: $types) {
    subscriptionId type balance entries threshold
    lastEntry { id kind amount balanceAfter operation reason createdAt }
  }
}`;
const SEARCH_LEADS = `mutation ($s: ID!) { searchLeads(subscriptionId: $s, input: { query: "roofers", limit: 1 }) { total } }`;
const GRANT = `mutation ($s: ID!, $amount: Int!) {
  grantCredits(input: { subscriptionId: $s, type: "leads", amount: $amount, reason: "top-up" }) { id balanceAfter }
}`;

const ENV = { RATE_LIMIT_DEFAULT: "100000/1m", BALANCE_PUSH_INTERVAL: "100ms" };

describe.each(BACKENDS)("creditBalanceChanged on %s", (backend) => {
  let database: TestDatabase;
  let writer: TestServer;
  let reader: TestServer;
  const clients: LiveClient[] = [];
  const open = (token: string | undefined): LiveClient => {
    const c = liveClient(reader.url, token);
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    database = await createTestDatabase(backend);
    writer = await startTestServer({ database, env: ENV });
    // PostgreSQL: a second instance on the same database hears the first one's changes.
    reader = backend === "postgres" ? await startTestServer({ database: { ...database, listen: undefined }, env: ENV }) : writer;
  });
  afterAll(async () => {
    for (const c of clients) await c.dispose().catch(() => undefined);
    if (reader !== writer) await reader?.close();
    await writer?.close();
    await database?.dispose();
  });

  it("pushes each metered debit to the subscriber within 100 ms, with the balance the response reported", { timeout: 60_000 }, async () => {
    const subscriptionId = await fundedSubscription(database, "live-owner", { leads: 100, ai: 10 });
    const live = open((await userToken("live-owner")));
    const sub = live.subscribe(BALANCE_CHANGED, { s: subscriptionId, types: ["leads"] });
    // The subscription is open once a first change reaches it; wait for the socket's ack first.
    await new Promise((resolve) => setTimeout(resolve, 300));

    const latencies: number[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await writer.gql(SEARCH_LEADS, { s: subscriptionId }, { token: (await userToken("live-owner")) });
      const answered = performance.now();
      expect(res.body.errors).toBeUndefined();
      const remaining = res.body.extensions?.credits.remaining[subscriptionId].leads;
      const event = await sub.waitFor((r) => r.data?.creditBalanceChanged.balance === remaining && r.at >= answered - 1_000);
      latencies.push(Math.max(0, event.at - answered));
      expect(event.data.creditBalanceChanged).toMatchObject({ subscriptionId, type: "leads", balance: remaining });
      expect(event.data.creditBalanceChanged.entries).toBeGreaterThanOrEqual(1);
      expect(event.data.creditBalanceChanged.lastEntry.balanceAfter).toBe(remaining);
      // Events of spaced changes are never held back by the push interval: wait it out between calls.
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
    latencies.sort((a, b) => a - b);
    expect(latencies[2], `latencies ${latencies.join(", ")} ms`).toBeLessThan(100);
    // Only leads were asked for.
    expect(sub.received.every((r) => r.data?.creditBalanceChanged.type === "leads")).toBe(true);
  });

  it("pushes an admin grant and a recovery refund", { timeout: 60_000 }, async () => {
    const subscriptionId = await fundedSubscription(database, "live-owner-2", { leads: 50 });
    const live = open((await adminToken()));
    const sub = live.subscribe(BALANCE_CHANGED, { s: subscriptionId });
    await new Promise((resolve) => setTimeout(resolve, 300));

    const grant = await writer.gql(GRANT, { s: subscriptionId, amount: 25 }, { token: (await adminToken()) });
    expect(grant.body.errors).toBeUndefined();
    // (The subscription's opening grant may still be on its way: look for this one.)
    const granted = await sub.waitFor((r) => r.data?.creditBalanceChanged.lastEntry.reason === "top-up");
    expect(granted.data.creditBalanceChanged).toMatchObject({ balance: 75, lastEntry: { amount: 25, reason: "top-up" } });

    // A hold left behind by a crashed call, refunded by the recovery pass.
    const [[hold]] = await holdGroups(database.db, [[
      {
        subscriptionId, creditType: "leads", amount: 5, entryId: crypto.randomUUID(), operation: "Mutation.searchLeads", estimated: 5,
        actorId: "live-owner-2", adminOverride: false, requestId: "crashed", authorize: false, actorIsAdmin: false,
      },
    ]]);
    expect(hold.ok).toBe(true);
    await sub.waitFor((r) => r.data?.creditBalanceChanged.balance === 70);
    await new Promise((resolve) => setTimeout(resolve, 150));
    const report = await runRecoveryPass({
      db: database.db,
      settleTimeoutMs: 1,
      clock: () => new Date(Date.now() + 60_000),
      logger: createLogger("silent"),
    });
    expect(report.refunded).toBe(1);
    const refunded = await sub.waitFor((r) => r.data?.creditBalanceChanged.lastEntry.kind === "REFUND");
    expect(refunded.data.creditBalanceChanged).toMatchObject({ balance: 75, lastEntry: { amount: 5 } });
  });

  it("gives a stranger one error and nothing else", { timeout: 30_000 }, async () => {
    const subscriptionId = await fundedSubscription(database, "live-owner-3", { leads: 10 });
    const live = open((await userToken("stranger")));
    const sub = live.subscribe(BALANCE_CHANGED, { s: subscriptionId });
    await sub.completed;
    const missing = live.subscribe(BALANCE_CHANGED, { s: "00000000-0000-4000-8000-000000000000" });
    await missing.completed;
    await writer.gql(SEARCH_LEADS, { s: subscriptionId }, { token: (await userToken("live-owner-3")) });
    await new Promise((resolve) => setTimeout(resolve, 300));

    expect(sub.received).toHaveLength(1);
    expect(sub.received[0].data ?? null).toBeNull();
    expect(sub.received[0].errors?.map((e) => e.extensions?.code)).toEqual(["FORBIDDEN"]);
    expect(missing.received).toHaveLength(1);
    expect(missing.received[0].errors?.map((e) => e.extensions?.code)).toEqual(["NOT_FOUND"]);
  });

  // PGlite has no session to lose.
  if (backend === "postgres") it("listens again after losing its session, and sends every subscriber the current balance", { timeout: 60_000 }, async () => {
    const subscriptionId = await fundedSubscription(database, "live-owner-4", { leads: 40 });
    const live = open(await userToken("live-owner-4"));
    const sub = live.subscribe(BALANCE_CHANGED, { s: subscriptionId, types: ["leads"] });
    await new Promise((resolve) => setTimeout(resolve, 300));

    // Cut every LISTEN session on this database (both instances'), then change the balance at once:
    // its notification may be lost, the resync after the reconnect is not.
    await database.db.execute(sql`select pg_terminate_backend(pid) from pg_stat_activity
                                    where datname = current_database() and query ilike 'listen %'`);
    await changeBalance(database.db, {
      subscriptionId, creditType: "leads", kind: "ADJUSTMENT", delta: -15, actorId: "test", reason: "while deaf", requestId: null,
    });
    const resynced = await sub.waitFor((r) => r.data?.creditBalanceChanged.entries === 0, 15_000);
    expect(resynced.data.creditBalanceChanged).toMatchObject({ balance: 25, lastEntry: { kind: "ADJUSTMENT", amount: -15, reason: "while deaf" } });

    // And changes are heard again.
    const res = await writer.gql(SEARCH_LEADS, { s: subscriptionId }, { token: await userToken("live-owner-4") });
    const remaining = res.body.extensions?.credits.remaining[subscriptionId].leads;
    await sub.waitFor((r) => r.data?.creditBalanceChanged.balance === remaining && r.data.creditBalanceChanged.entries > 0);
  });

  // PGlite has no session to lose.
  if (backend === "postgres") it("says liveBalance down in /health while its session is lost and cannot come back, up once it hears again", { timeout: 60_000 }, async () => {
    const health = async () => (await (await fetch(`${reader.url}/health`)).json()) as { status: string; liveBalance: string };
    await expect.poll(async () => (await health()).liveBalance, { timeout: 10_000 }).toBe("up");
    const [{ name }] = await queryRows<{ name: string }>(database.db, sql`select current_database() as name`);
    // New connections refused, then every LISTEN session cut: it cannot listen again for now. (It
    // used to say "up" all along, while its subscribers heard nothing.)
    // A database cannot close itself to connections: said from the server's default database.
    const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await admin.connect();
    const allowConnections = (allow: boolean) => admin.query(`alter database "${name}" allow_connections ${allow}`);
    await allowConnections(false);
    try {
      await database.db.execute(sql`select pg_terminate_backend(pid) from pg_stat_activity
                                      where datname = current_database() and query ilike 'listen %'`);
      await expect.poll(health, { timeout: 10_000 }).toMatchObject({ status: "degraded", liveBalance: "down" });
    } finally {
      await allowConnections(true);
      await admin.end();
    }
    await expect.poll(async () => (await health()).liveBalance, { timeout: 20_000 }).toBe("up");
    expect((await health()).status).toBe("ok");
  });

  it("closes a connection without a valid token with 4401", { timeout: 30_000 }, async () => {
    const missing = open(undefined);
    expect((await missing.closed).code).toBe(4401);
    const bad = open("not-a-jwt");
    expect((await bad.closed).code).toBe(4401);
  });
});
