/**
 * Idempotency-Key on the admin mutations over HTTP, on PGlite and PostgreSQL: a payment webhook that
 * calls grantCredits twice with one key grants once (also when both calls arrive at once); a retry
 * gets the first call's response; a retry while the first runs is 409; the same key with other
 * arguments is 400; keys are per caller; a mutation that failed leaves its key free; and every admin
 * mutation (createSubscription, grantCredits, adjustCredits, refundCharge, setSubscriptionStatus)
 * replays instead of running twice.
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../../src/db/database.js";
import { claimKey } from "../../src/idempotency/idempotency-store.js";
import { requestHash } from "../../src/idempotency/request-hash.js";
import { auditLedger } from "../../src/ledger/audit.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { adminToken, fundedSubscription, startTestServer, userToken, type GraphQLResponse, type TestServer } from "../helpers/test-app.js";

const ADMIN = "idem-admin";
const OTHER_ADMIN = "idem-admin-2";
const OWNER = "idem-owner";

const ENTRY = "id subscriptionId type kind amount balanceAfter actorId reason refundOf createdAt";
const SUBSCRIPTION = "id ownerId plan status createdAt balances { type balance }";
const CREATE = `mutation ($input: CreateSubscriptionInput!) { createSubscription(input: $input) { ${SUBSCRIPTION} } }`;
const SET_STATUS = `mutation ($id: ID!, $status: SubscriptionStatus!, $reason: String!) {
  setSubscriptionStatus(id: $id, status: $status, reason: $reason) { id status } }`;
const GRANT = `mutation ($input: GrantCreditsInput!) { grantCredits(input: $input) { ${ENTRY} } }`;
const ADJUST = `mutation ($input: AdjustCreditsInput!) { adjustCredits(input: $input) { ${ENTRY} } }`;
const REFUND = `mutation ($input: RefundChargeInput!) { refundCharge(input: $input) { ${ENTRY} } }`;
const SET_THRESHOLD = `mutation ($input: LowBalanceThresholdInput!) { setLowBalanceThreshold(input: $input) { type lowBalanceThreshold } }`;
const SEARCH_LEADS = `mutation ($sub: ID!) { searchLeads(subscriptionId: $sub, input: { query: "plumbers", limit: 4 }) { total } }`;

const newKey = (() => {
  let n = 0;
  return (label: string) => `${label}-${Date.now()}-${++n}`;
})();

describe.each(BACKENDS)("Idempotency-Key on admin mutations on %s", (backend) => {
  let database: TestDatabase;
  let server: TestServer;
  let admin: string;
  let otherAdmin: string;

  beforeAll(async () => {
    database = await createTestDatabase(backend);
    server = await startTestServer({ database, env: { RATE_LIMIT_DEFAULT: "10000/1m" } });
    admin = await adminToken(ADMIN);
    otherAdmin = await adminToken(OTHER_ADMIN);
  });
  afterAll(async () => {
    await server?.close();
    await database?.dispose();
  });

  const send = (query: string, variables: Record<string, unknown>, key?: string, token = admin) =>
    server.gql(query, variables, { token, headers: key ? { "idempotency-key": key } : {} });

  async function entries(subscriptionId: string, kind: string): Promise<{ id: string; amount: number }[]> {
    const rows = await queryRows<{ id: string; amount: number }>(
      database.db,
      sql`select id, amount from credit_ledger where subscription_id = ${subscriptionId}::uuid and kind = ${kind} order by seq`,
    );
    return rows.map((r) => ({ id: r.id, amount: Number(r.amount) }));
  }

  async function balance(subscriptionId: string, type: string): Promise<number> {
    const rows = await queryRows<{ balance: number }>(
      database.db,
      sql`select balance from credit_balances where subscription_id = ${subscriptionId}::uuid and credit_type = ${type}`,
    );
    return Number(rows[0].balance);
  }

  function expectOk(response: GraphQLResponse) {
    expect(response.body.errors, JSON.stringify(response.body.errors)).toBeUndefined();
    expect(response.status).toBe(200);
  }

  it("a payment webhook delivered twice with one key grants once, and the retry gets the same response", async () => {
    const sub = await fundedSubscription(database, OWNER, {});
    const key = newKey("stripe-evt");
    const input = { subscriptionId: sub, type: "ai", amount: 500, reason: "payment pi_123" };

    const first = await send(GRANT, { input }, key);
    expectOk(first);
    const second = await send(GRANT, { input }, key);
    expectOk(second);

    expect(second.body).toEqual(first.body);
    expect(await entries(sub, "GRANT")).toEqual([{ id: first.body.data.grantCredits.id, amount: 500 }]);
    expect(await balance(sub, "ai")).toBe(500);
  });

  it("two deliveries at once with one key: one grants, the other is 409 or the replay; exactly one GRANT", async () => {
    for (let round = 0; round < 3; round++) {
      const sub = await fundedSubscription(database, OWNER, {});
      const key = newKey("concurrent");
      const input = { subscriptionId: sub, type: "leads", amount: 70, reason: "payment pi_concurrent" };
      const responses = await Promise.all([send(GRANT, { input }, key), send(GRANT, { input }, key)]);

      const succeeded = responses.filter((r) => r.status === 200 && !r.body.errors);
      const conflicts = responses.filter((r) => r.status === 409);
      expect(succeeded.length + conflicts.length).toBe(2);
      expect(succeeded.length).toBeGreaterThanOrEqual(1);
      for (const c of conflicts) expect(c.body.errors?.[0].extensions.code).toBe("CONFLICT");
      if (succeeded.length === 2) expect(succeeded[1].body).toEqual(succeeded[0].body);

      const grants = await entries(sub, "GRANT");
      expect(grants).toEqual([{ id: succeeded[0].body.data.grantCredits.id, amount: 70 }]);
      expect(await balance(sub, "leads")).toBe(70);
    }
  });

  it("a retry while the first call still runs is 409 CONFLICT with retryAfterSeconds and Retry-After, and grants nothing", async () => {
    const sub = await fundedSubscription(database, OWNER, {});
    const key = newKey("running");
    const input = { subscriptionId: sub, type: "ai", amount: 9, reason: "still running" };
    // The first call's claim, as it stands while that call runs.
    const now = new Date();
    await claimKey(database.db, { actorId: ADMIN, key, fieldPath: "grantCredits" }, {
      // The arguments as GraphQL coerces them: GrantCreditsInput's defaults (issue 17) included.
      requestHash: requestHash("Mutation.grantCredits", { input: { ...input, category: "PAID", priority: 50 } }),
      now,
      expiresAt: new Date(now.getTime() + 60_000),
      staleBefore: new Date(now.getTime() - 60_000),
    });

    const retry = await send(GRANT, { input }, key);
    expect(retry.status).toBe(409);
    expect(retry.body.errors?.[0].extensions.code).toBe("CONFLICT");
    // It says when to send it again, as a 429 does (an outside audit of client retries).
    expect(retry.body.errors?.[0].extensions.retryAfterSeconds).toBe(2);
    expect(retry.headers.get("retry-after")).toBe("2");
    expect(await entries(sub, "GRANT")).toEqual([]);
  });

  it("the same key with other arguments is BAD_USER_INPUT and changes nothing", async () => {
    const sub = await fundedSubscription(database, OWNER, {});
    const key = newKey("reused");
    expectOk(await send(GRANT, { input: { subscriptionId: sub, type: "ai", amount: 5, reason: "first" } }, key));

    const other = await send(GRANT, { input: { subscriptionId: sub, type: "ai", amount: 6, reason: "first" } }, key);
    expect(other.status).toBe(400);
    expect(other.body.errors?.[0].extensions).toMatchObject({ code: "BAD_USER_INPUT", field: "Idempotency-Key" });
    expect(await balance(sub, "ai")).toBe(5);
  });

  it("keys are per caller: another admin's call with the same key runs", async () => {
    const sub = await fundedSubscription(database, OWNER, {});
    const key = newKey("shared");
    const input = { subscriptionId: sub, type: "ai", amount: 3, reason: "per caller" };
    expectOk(await send(GRANT, { input }, key));
    expectOk(await send(GRANT, { input }, key, otherAdmin));
    expect((await entries(sub, "GRANT")).map((g) => g.amount)).toEqual([3, 3]);
  });

  it("a mutation that failed leaves its key free: the retry runs and can succeed", async () => {
    const sub = await fundedSubscription(database, OWNER, { ai: 2 });
    const key = newKey("failed");
    const input = { subscriptionId: sub, type: "ai", delta: -5, reason: "chargeback" };
    const refused = await send(ADJUST, { input }, key);
    expect(refused.body.errors?.[0].extensions.code).toBe("BAD_USER_INPUT");

    expectOk(await send(GRANT, { input: { subscriptionId: sub, type: "ai", amount: 10, reason: "top up" } }));
    const retried = await send(ADJUST, { input }, key);
    expectOk(retried);
    expect(retried.body.data.adjustCredits).toMatchObject({ kind: "ADJUSTMENT", amount: -5, balanceAfter: 7 });
    expect(await entries(sub, "ADJUSTMENT")).toHaveLength(1);
  });

  it("createSubscription, adjustCredits, refundCharge and setSubscriptionStatus replay instead of running twice", async () => {
    // createSubscription: one subscription, the same response.
    const createKey = newKey("create");
    const createInput = { ownerId: "idem-created-owner", plan: "pro", initialCredits: [{ type: "leads", amount: 50 }] };
    const created = await send(CREATE, { input: createInput }, createKey);
    expectOk(created);
    const createdAgain = await send(CREATE, { input: createInput }, createKey);
    expect(createdAgain.body).toEqual(created.body);
    const owned = await queryRows<{ n: number }>(
      database.db,
      sql`select count(*)::int as n from billing_subscriptions where owner_id = 'idem-created-owner'`,
    );
    expect(Number(owned[0].n)).toBe(1);
    const sub = created.body.data.createSubscription.id as string;

    // adjustCredits: one adjustment.
    const adjustKey = newKey("adjust");
    const adjustInput = { subscriptionId: sub, type: "leads", delta: -8, reason: "correction" };
    const adjusted = await send(ADJUST, { input: adjustInput }, adjustKey);
    expectOk(adjusted);
    expect((await send(ADJUST, { input: adjustInput }, adjustKey)).body).toEqual(adjusted.body);
    expect(await entries(sub, "ADJUSTMENT")).toHaveLength(1);
    expect(await balance(sub, "leads")).toBe(42);

    // refundCharge of a partial amount: one REFUND, though the debit had more left to refund.
    const charged = await server.gql(SEARCH_LEADS, { sub }, { token: await userToken("idem-created-owner") });
    expectOk(charged);
    const debitId = charged.body.extensions!.credits.charges[0].entryId as string;
    const refundKey = newKey("refund");
    const refundInput = { entryId: debitId, amount: 1, reason: "goodwill" };
    const refunded = await send(REFUND, { input: refundInput }, refundKey);
    expectOk(refunded);
    expect((await send(REFUND, { input: refundInput }, refundKey)).body).toEqual(refunded.body);
    const refunds = await queryRows<{ n: number }>(
      database.db,
      sql`select count(*)::int as n from credit_ledger where refund_of = ${debitId}::uuid and kind = 'REFUND'`,
    );
    expect(Number(refunds[0].n)).toBe(1);

    // setSubscriptionStatus: a replay returns the first outcome and does not apply it again.
    const suspendKey = newKey("suspend");
    const suspendArgs = { id: sub, status: "SUSPENDED", reason: "fraud check" };
    expectOk(await send(SET_STATUS, suspendArgs, suspendKey));
    expectOk(await send(SET_STATUS, { id: sub, status: "ACTIVE", reason: "cleared" }, newKey("activate")));
    const replayed = await send(SET_STATUS, suspendArgs, suspendKey);
    expect(replayed.body.data.setSubscriptionStatus).toEqual({ id: sub, status: "SUSPENDED" });
    const status = await queryRows<{ status: string }>(database.db, sql`select status from billing_subscriptions where id = ${sub}::uuid`);
    expect(status[0].status).toBe("ACTIVE");
  });

  it("setLowBalanceThreshold replays its first outcome instead of applying it again", async () => {
    const created = await send(CREATE, { input: { ownerId: "threshold-owner", plan: "pro", initialCredits: [{ type: "ai", amount: 50 }] } });
    expectOk(created);
    const sub = created.body.data.createSubscription.id;
    const key = newKey("threshold");
    const first = await send(SET_THRESHOLD, { input: { subscriptionId: sub, type: "ai", lowBalance: 20 } }, key);
    expectOk(first);
    expect(first.body.data.setLowBalanceThreshold).toEqual({ type: "ai", lowBalanceThreshold: 20 });
    expectOk(await send(SET_THRESHOLD, { input: { subscriptionId: sub, type: "ai", lowBalance: 5 } }, newKey("threshold")));
    const replayed = await send(SET_THRESHOLD, { input: { subscriptionId: sub, type: "ai", lowBalance: 20 } }, key);
    // The first call's answer (20), not the threshold set since (5).
    expect(replayed.body).toEqual(first.body);
    const stored = await queryRows<{ low_balance: number }>(
      database.db,
      sql`select low_balance from credit_balance_thresholds where subscription_id = ${sub}::uuid and credit_type = 'ai'`,
    );
    expect(Number(stored[0].low_balance)).toBe(5);
    const conflicting = await send(SET_THRESHOLD, { input: { subscriptionId: sub, type: "ai", lowBalance: 7 } }, key);
    expect(conflicting.body.errors?.[0].extensions?.code).toBe("BAD_USER_INPUT");
  });

  it("a replay answers what the first call answered, nested balances, thresholds and grants included, though they changed since", async () => {
    const held = "held lowBalanceThreshold";
    const balances = `balances { type balance updatedAt ${held} }`;
    const grants = "grants(includeSpent: true) { id amount remaining } currentPeriodEnd";
    const create = `mutation ($input: CreateSubscriptionInput!) { createSubscription(input: $input) { id status ${balances} ${grants} } }`;
    const setStatus = `mutation ($id: ID!, $status: SubscriptionStatus!, $reason: String!) {
      setSubscriptionStatus(id: $id, status: $status, reason: $reason) { id status statusReason ${balances} ${grants} } }`;
    const setThreshold = `mutation ($input: LowBalanceThresholdInput!) { setLowBalanceThreshold(input: $input) { type balance updatedAt ${held} } }`;

    const createKey = newKey("create-snapshot");
    const createInput = { ownerId: "idem-snapshot-owner", plan: "pro", initialCredits: [{ type: "ai", amount: 30 }] };
    const created = await send(create, { input: createInput }, createKey);
    expectOk(created);
    const sub = created.body.data.createSubscription.id as string;
    const thresholdKey = newKey("threshold-snapshot");
    const thresholdInput = { subscriptionId: sub, type: "ai", lowBalance: 10 };
    const thresholdSet = await send(setThreshold, { input: thresholdInput }, thresholdKey);
    expectOk(thresholdSet);
    const suspendKey = newKey("suspend-snapshot");
    const suspendArgs = { id: sub, status: "SUSPENDED", reason: "snapshot check" };
    const suspended = await send(setStatus, suspendArgs, suspendKey);
    expectOk(suspended);

    // Everything those answers showed changes afterwards: balance, grants, threshold.
    expectOk(await send(GRANT, { input: { subscriptionId: sub, type: "ai", amount: 7, reason: "later grant" } }));
    expectOk(await send(setThreshold, { input: { subscriptionId: sub, type: "ai", lowBalance: 25 } }));

    expect((await send(create, { input: createInput }, createKey)).body).toEqual(created.body);
    expect((await send(setThreshold, { input: thresholdInput }, thresholdKey)).body).toEqual(thresholdSet.body);
    expect((await send(setStatus, suspendArgs, suspendKey)).body).toEqual(suspended.body);
    expect(await balance(sub, "ai")).toBe(37);
  });

  it("without the header, two calls are two grants (unchanged), and the ledger audits clean", async () => {
    const sub = await fundedSubscription(database, OWNER, {});
    const input = { subscriptionId: sub, type: "skiptrace", amount: 4, reason: "no key" };
    expectOk(await send(GRANT, { input }));
    expectOk(await send(GRANT, { input }));
    expect(await balance(sub, "skiptrace")).toBe(8);
    expect((await auditLedger(database.db)).ok).toBe(true);
  });
});
