/**
 * Through a real PgBouncer in transaction mode (what Supabase's pooler on port 6543 is) with a
 * small pool: migrations at start (two instances at once), 200 concurrent previews, 50 concurrent
 * metered calls, the admin operations (one with an Idempotency-Key), the recovery pass and a clean
 * ledger audit, and live-balance pushes (NOTIFY through the pooler, LISTEN on DATABASE_DIRECT_URL). A query that
 * leaves state on its server session (a named prepared statement, a session advisory lock) breaks
 * here, because the pooler hands the next statement to whichever server connection is free.
 */
import pg from "pg";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectDatabase } from "../../src/db/connect.js";
import type { DatabaseHandle } from "../../src/db/database.js";
import { holdOne } from "../helpers/ledger-commands.js";
import { createLogger } from "../../src/observability/logger.js";
import { runRecoveryPass } from "../../src/recovery/recovery-pass.js";
import { postgresAvailable, REQUIRE_SERVICES, TEST_DATABASE_URL } from "../helpers/services.js";
import { requirePgBouncer, startPgBouncer, type PgBouncer } from "../helpers/pgbouncer.js";
import { liveClient } from "../helpers/live-client.js";
import { adminToken, fundedSubscription, startTestServer, userToken, type TestServer } from "../helpers/test-app.js";

const pgbouncer = postgresAvailable ? requirePgBouncer(REQUIRE_SERVICES) : undefined;
const OWNER = "pooler-owner";
const ADMIN = "pooler-admin";

const PREVIEW = `query ($input: CreditPreviewInput!) {
  creditPreview(input: $input) { subscriptionId totals { type amount } balances { type balance } sufficient } }`;
const PRICED = `mutation ($sub: ID!) { searchLeads(subscriptionId: $sub, input: { query: "plumbers", limit: 3 }) { total } }`;
const SEARCH_LEADS = `mutation ($sub: ID!) { searchLeads(subscriptionId: $sub, input: { query: "roofers", limit: 2 }) { total } }`;
const ENTRY = "id subscriptionId type kind amount balanceAfter";
const CREATE = `mutation ($input: CreateSubscriptionInput!) { createSubscription(input: $input) { id status balances { type balance } } }`;
const SET_STATUS = `mutation ($id: ID!, $status: SubscriptionStatus!, $reason: String!) {
  setSubscriptionStatus(id: $id, status: $status, reason: $reason) { id status } }`;
const GRANT = `mutation ($input: GrantCreditsInput!) { grantCredits(input: $input) { ${ENTRY} } }`;
const ADJUST = `mutation ($input: AdjustCreditsInput!) { adjustCredits(input: $input) { ${ENTRY} } }`;
const REFUND = `mutation ($input: RefundChargeInput!) { refundCharge(input: $input) { ${ENTRY} } }`;
const BALANCE_CHANGED = `subscription ($s: ID!, $types: [String!]) { creditBalanceChanged(subscriptionId: $s, types: $types) { subscriptionId type balance } }`;
const AUDIT = `query { ledgerAudit { checkedBalances ok mismatches { subscriptionId type balance ledgerSum } } }`;

async function directQuery<T extends pg.QueryResultRow>(url: string, text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text)).rows;
  } finally {
    await client.end();
  }
}

describe.runIf(pgbouncer)("through PgBouncer in transaction mode", () => {
  const name = `gc_pooler_${randomBytes(6).toString("hex")}`;
  const directUrl = Object.assign(new URL(TEST_DATABASE_URL), { pathname: `/${name}` }).toString();
  let bouncer: PgBouncer;
  let pooled: DatabaseHandle;
  let server: TestServer;
  let admin: string;
  let owner: string;
  const subscriptions: string[] = [];
  /** PgBouncer's warnings and errors, for failure messages (its log also has a line per login). */
  const poolerErrors = () => bouncer.log().split("\n").filter((line) => /WARNING|ERROR|FATAL/.test(line)).slice(-20).join("\n");

  beforeAll(async () => {
    await directQuery(TEST_DATABASE_URL, `create database ${name}`);
    bouncer = await startPgBouncer(pgbouncer!, { upstreamUrl: TEST_DATABASE_URL, poolSize: 4 });
    admin = await adminToken(ADMIN);
    owner = await userToken(OWNER);
  }, 60_000);

  afterAll(async () => {
    await server?.close();
    await pooled?.close();
    await bouncer?.stop();
    await directQuery(TEST_DATABASE_URL, `drop database if exists ${name} with (force)`);
  }, 60_000);

  it("migrates an empty database from two instances at once, and leaves no advisory lock behind", async () => {
    const [first, second] = await Promise.all([
      connectDatabase({ databaseUrl: bouncer.urlFor(directUrl), poolSize: 4 }),
      connectDatabase({ databaseUrl: bouncer.urlFor(directUrl), poolSize: 4 }),
    ]);
    await second.close();
    pooled = first;
    const applied = await directQuery<{ n: number }>(directUrl, `select count(*)::int as n from drizzle.__graphql_credits_migrations`);
    expect(applied[0].n).toBeGreaterThan(0);
    const locks = await directQuery<{ n: number }>(
      directUrl,
      `select count(*)::int as n from pg_locks l join pg_database d on d.oid = l.database where l.locktype = 'advisory' and d.datname = '${name}'`,
    );
    expect(locks[0].n).toBe(0);

    server = await startTestServer({
      // Queries go through the pooler; LISTEN needs a session, so it takes the direct URL (as on Supabase).
      env: { DATABASE_URL: bouncer.urlFor(directUrl), DATABASE_DIRECT_URL: directUrl, DATABASE_POOL_SIZE: "10", RATE_LIMIT_DEFAULT: "100000/1m" },
    });
    for (let i = 0; i < 20; i++) subscriptions.push(await fundedSubscription(pooled, OWNER, { leads: 1_000, ai: 100 }));
  }, 120_000);

  it("answers 200 concurrent creditPreview calls beside metered calls, none with an error, in each of three waves", async () => {
    // Previews share reads (subscription-snapshots.ts), so a wave makes only a few statements; metered
    // calls beside them keep the pooler handing those reads to different server connections.
    for (let wave = 0; wave < 3; wave++) {
      const previews = Array.from({ length: 200 }, (_, i) => {
        const sub = subscriptions[i % subscriptions.length];
        return server.gql(PREVIEW, { input: { subscriptionId: sub, query: PRICED, variables: { sub } } }, { token: owner });
      });
      const metered = Array.from({ length: 20 }, (_, i) => server.gql(SEARCH_LEADS, { sub: subscriptions[i] }, { token: owner }));
      const [responses, charged] = await Promise.all([Promise.all(previews), Promise.all(metered)]);
      const failed = responses.filter((r) => r.status !== 200 || r.body.errors);
      expect(failed.map((r) => r.body.errors?.[0]?.message), `wave ${wave}: ${poolerErrors()}`).toEqual([]);
      for (const r of responses) {
        expect(r.body.data.creditPreview.totals).toEqual([{ type: "leads", amount: 3 }]);
        expect(r.body.data.creditPreview.sufficient).toBe(true);
      }
      expect(charged.filter((r) => r.status !== 200 || r.body.errors)).toEqual([]);
    }
  }, 180_000);

  it("answers 50 concurrent metered calls, each charged once", async () => {
    const responses = await Promise.all(
      Array.from({ length: 50 }, (_, i) => server.gql(SEARCH_LEADS, { sub: subscriptions[i % 5] }, { token: owner })),
    );
    expect(responses.filter((r) => r.status !== 200 || r.body.errors).map((r) => r.body.errors)).toEqual([]);
    const charges = responses.map((r) => r.body.extensions!.credits.charges[0]);
    expect(new Set(charges.map((c) => c.entryId)).size).toBe(50);
    for (const c of charges) expect(c.charged).toBe(2);
  }, 120_000);

  it("pushes live balances: NOTIFY sent through the pooler, heard on the direct LISTEN session", async () => {
    const live = liveClient(server.url, owner);
    try {
      const sub = subscriptions[7];
      const events = live.subscribe(BALANCE_CHANGED, { s: sub, types: ["leads"] });
      await new Promise((resolve) => setTimeout(resolve, 300));
      const charged = await server.gql(SEARCH_LEADS, { sub }, { token: owner });
      expect(charged.body.errors).toBeUndefined();
      const remaining = charged.body.extensions!.credits.remaining[sub].leads;
      const event = await events.waitFor((r) => r.data?.creditBalanceChanged.balance === remaining, 15_000);
      expect(event.data.creditBalanceChanged).toMatchObject({ subscriptionId: sub, type: "leads", balance: remaining });
    } finally {
      await live.dispose();
    }
    // Its session heard the probe it sent itself at start: /health says so.
    expect(await (await fetch(`${server.url}/health`)).json()).toMatchObject({ status: "ok", liveBalance: "up" });
  }, 60_000);

  it("says so when the LISTEN session goes through the pooler too (no DATABASE_DIRECT_URL): logged at error, /health degraded", async () => {
    // LISTEN through a transaction-mode pooler succeeds and then hears nothing: subscribers of such
    // an instance used to get no event at all, with nothing logged and /health "ok".
    const lines: Record<string, unknown>[] = [];
    const logDestination = { write: (line: string) => void lines.push(JSON.parse(line)) };
    const pooledOnly = await startTestServer({
      database: undefined,
      env: { DATABASE_URL: bouncer.urlFor(directUrl), DATABASE_POOL_SIZE: "2", LOG_LEVEL: "info" },
      logDestination,
    });
    try {
      await expect
        .poll(async () => (await (await fetch(`${pooledOnly.url}/health`)).json()).liveBalance, { timeout: 15_000, interval: 250 })
        .toBe("down");
      expect(await (await fetch(`${pooledOnly.url}/health`)).json()).toMatchObject({ status: "degraded", database: "up", liveBalance: "down" });
      expect(lines.filter((line) => line.event === "live.notifications_unheard")).toEqual([
        expect.objectContaining({ level: 50, msg: expect.stringMatching(/point DATABASE_DIRECT_URL at a direct connection/) }),
      ]);
      expect(await (await fetch(`${pooledOnly.url}/metrics`)).text()).toMatch(/live_balance_unheard_probes_total 1\b/);
    } finally {
      await pooledOnly.close();
    }
  }, 60_000);

  it("runs every admin operation", async () => {
    const created = await server.gql(CREATE, { input: { ownerId: OWNER, plan: "pooled", initialCredits: [{ type: "ai", amount: 5 }] } }, { token: admin });
    expect(created.body.errors).toBeUndefined();
    const sub = created.body.data.createSubscription.id as string;
    expect(created.body.data.createSubscription.balances).toContainEqual({ type: "ai", balance: 5 });

    // With an Idempotency-Key, as a payment webhook sends it: delivered twice, granted once.
    const grant = () =>
      server.gql(GRANT, { input: { subscriptionId: sub, type: "leads", amount: 40, reason: "pooled grant" } }, { token: admin, headers: { "idempotency-key": `pooled-${sub}` } });
    const granted = await grant();
    expect(granted.body.data?.grantCredits).toMatchObject({ kind: "GRANT", amount: 40, balanceAfter: 40 });
    expect((await grant()).body).toEqual(granted.body);
    const adjusted = await server.gql(ADJUST, { input: { subscriptionId: sub, type: "leads", delta: -10, reason: "pooled fix" } }, { token: admin });
    expect(adjusted.body.data?.adjustCredits).toMatchObject({ kind: "ADJUSTMENT", amount: -10, balanceAfter: 30 });

    const charged = await server.gql(SEARCH_LEADS, { sub }, { token: owner });
    const debit = charged.body.extensions!.credits.charges[0];
    const refunded = await server.gql(REFUND, { input: { entryId: debit.entryId, reason: "pooled refund" } }, { token: admin });
    expect(refunded.body.errors).toBeUndefined();
    expect(refunded.body.data.refundCharge).toMatchObject({ kind: "REFUND", subscriptionId: sub });
    expect(refunded.body.data.refundCharge.amount).toBeGreaterThan(0);

    const suspended = await server.gql(SET_STATUS, { id: sub, status: "SUSPENDED", reason: "pooled suspend" }, { token: admin });
    expect(suspended.body.data?.setSubscriptionStatus).toEqual({ id: sub, status: "SUSPENDED" });
  }, 60_000);

  it("runs the recovery pass: an abandoned hold is refunded once", async () => {
    const held = await holdOne(pooled.db, {
      subscriptionId: subscriptions[0],
      creditType: "ai",
      amount: 7,
      operation: "Mutation.runAiTask",
      estimated: 7,
      actorId: OWNER,
      adminOverride: false,
      requestId: "pooled-abandoned",
    });
    expect(held.ok).toBe(true);
    const later = () => new Date(Date.now() + 10 * 60_000);
    const pass = () => runRecoveryPass({ db: pooled.db, settleTimeoutMs: 5 * 60_000, logger: createLogger("silent"), clock: later });
    const [a, b] = await Promise.all([pass(), pass()]);
    expect(a.failed + b.failed).toBe(0);
    expect(a.refunded + b.refunded).toBe(1);
    expect(a.refundedCredits + b.refundedCredits).toBe(7);
  }, 60_000);

  it("leaves a clean ledger", async () => {
    const audit = await server.gql(AUDIT, {}, { token: admin });
    expect(audit.body.data.ledgerAudit).toMatchObject({ ok: true, mismatches: [] });
    expect(audit.body.data.ledgerAudit.checkedBalances).toBeGreaterThan(20);
  }, 60_000);
});
