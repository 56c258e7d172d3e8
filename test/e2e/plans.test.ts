/**
 * Plans over HTTP, on PGlite and PostgreSQL (issue 17): PLANS parsed at start and listed by
 * Query.plans; a subscription on a plan gets its allowance at once and `currentPeriodEnd`; crossing
 * a period rolls over up to rolloverMax of the unused plan credits and expires the rest; periods
 * missed while no instance ran are renewed in order by the first pass of the next start; a plan the
 * configuration does not know grants nothing, until a configuration knows it, and so does one whose
 * allowances are all 0 (no period, currentPeriodEnd null); a cancelled subscription stops renewing,
 * and starts a new period when reactivated.
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../../src/db/database.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { adminToken, startTestServer, type TestServer } from "../helpers/test-app.js";

const PLANS = JSON.stringify([
  { name: "five", period: "5s", allowances: { ai: { allowance: 10, rolloverMax: 3 } } },
  { name: "quick", period: "1s", allowances: { ai: { allowance: 10, rolloverMax: 3 }, leads: { allowance: 2 } } },
]);
const CREATE = `mutation ($plan: String!) { createSubscription(input: { ownerId: "plan-owner", plan: $plan }) {
  id currentPeriodEnd balances { type balance } } }`;
const STATE = `query ($id: ID!) { subscription(id: $id) {
  currentPeriodEnd balances { type balance } grants(type: "ai") { category amount remaining expiresAt } } }`;
const RUN_AI = `mutation ($sub: ID!, $amount: Int) { runAiTask(subscriptionId: $sub, input: { prompt: "hi" }, creditAmount: $amount) { __typename } }`;
const AUDIT = `query { ledgerAudit { ok mismatches { subscriptionId type balance ledgerSum } } }`;

describe.each(BACKENDS)("plans on %s", (backend) => {
  let database: TestDatabase;
  let server: TestServer | undefined;
  let admin: string;

  beforeAll(async () => {
    database = await createTestDatabase(backend);
    admin = await adminToken("plans-admin");
  });
  afterAll(async () => {
    await server?.close();
    await database?.dispose();
  });

  async function start(env: Record<string, string> = {}): Promise<TestServer> {
    await server?.close();
    server = await startTestServer({ database, env: { PLANS, ...env } });
    return server;
  }

  async function call<T = any>(query: string, variables?: Record<string, unknown>): Promise<T> {
    const res = await server!.gql<T>(query, variables, { token: admin });
    expect(res.body.errors, JSON.stringify(res.body.errors)).toBeUndefined();
    return res.body.data as T;
  }

  const ai = (balances: { type: string; balance: number }[]) => balances.find((b) => b.type === "ai")!.balance;

  async function ledger(sub: string) {
    return queryRows<{ kind: string; amount: number; reason: string | null; credit_type: string; balance_after: number }>(
      database.db,
      sql`select kind, amount, reason, credit_type, balance_after from credit_ledger where subscription_id = ${sub}::uuid order by seq`,
    );
  }

  async function expectAuditClean(): Promise<void> {
    expect((await call<{ ledgerAudit: unknown }>(AUDIT)).ledgerAudit).toEqual({ ok: true, mismatches: [] });
  }

  it("lists the configured plans without authentication", async () => {
    await start();
    const res = await server!.gql(`{ plans { name period allowances { type amount rolloverMax } } }`);
    expect(res.body.data.plans).toEqual([
      { name: "five", period: "5s", allowances: [{ type: "ai", amount: 10, rolloverMax: 3 }] },
      {
        name: "quick",
        period: "1s",
        allowances: [
          { type: "ai", amount: 10, rolloverMax: 3 },
          { type: "leads", amount: 2, rolloverMax: 0 },
        ],
      },
    ]);
  });

  it("refuses starting credits that the plan's first allowance would take past the largest balance (400, not 500)", async () => {
    await start();
    const open = (amount: number) =>
      server!.gql(
        `mutation ($amount: Int!) { createSubscription(input: { ownerId: "plan-owner", plan: "five", initialCredits: [{ type: "ai", amount: $amount }] }) { id } }`,
        { amount },
        { token: admin },
      );
    const refused = await open(2_147_483_647 - 9);
    expect(refused.status).toBe(400);
    expect(refused.body.errors![0].extensions).toMatchObject({ code: "BAD_USER_INPUT", field: "initialCredits[0].amount" });
    expect(refused.body.errors![0].message).toMatch(/plus the plan's allowance of 10 would pass the largest balance/);
    const opened = await open(2_147_483_647 - 10);
    expect(opened.status).toBe(200);
    await expectAuditClean();
  });

  it("grants the allowance at once; crossing the period rolls 3 of 6 unused over and expires the other 3", async () => {
    await start({ RECOVERY_INTERVAL: "500ms" });
    const before = Date.now();
    const created = (await call<{ createSubscription: any }>(CREATE, { plan: "five" })).createSubscription;
    expect(ai(created.balances)).toBe(10);
    const firstEnd = new Date(created.currentPeriodEnd).getTime();
    expect(firstEnd).toBeGreaterThanOrEqual(before + 5_000 - 50);
    expect(firstEnd).toBeLessThanOrEqual(Date.now() + 5_000);
    let state = (await call<{ subscription: any }>(STATE, { id: created.id })).subscription;
    expect(state.grants).toEqual([{ category: "PLAN", amount: 10, remaining: 10, expiresAt: created.currentPeriodEnd }]);

    const spend = await server!.gql(RUN_AI, { sub: created.id, amount: 4 }, { token: admin });
    expect(spend.body.errors).toBeUndefined();
    await expectAuditClean();

    await expect
      .poll(async () => (await call<{ subscription: any }>(STATE, { id: created.id })).subscription.currentPeriodEnd, { timeout: 12_000, interval: 250 })
      .not.toBe(created.currentPeriodEnd);
    state = (await call<{ subscription: any }>(STATE, { id: created.id })).subscription;
    expect(ai(state.balances)).toBe(13);
    const secondEnd = new Date(state.currentPeriodEnd).getTime();
    expect(secondEnd - firstEnd).toBe(5_000);
    expect(state.grants).toEqual([
      { category: "PLAN", amount: 3, remaining: 3, expiresAt: state.currentPeriodEnd },
      { category: "PLAN", amount: 10, remaining: 10, expiresAt: state.currentPeriodEnd },
    ]);
    // The new period's grants go in before the old period's credits go out, so the balance (6, then
    // 9, 19, 16, 13) never passed through 0: the renewal raised no alert. (Out first, it went 6, 3,
    // 0, 3, 13, and every renewal stored, logged and pushed BALANCE_DEPLETED then BALANCE_RECOVERED.)
    const renewal = (await ledger(created.id)).slice(-4);
    expect(renewal.map((e) => [e.kind, e.amount])).toEqual([
      ["GRANT", 3],
      ["GRANT", 10],
      ["ADJUSTMENT", -3],
      ["EXPIRATION", -3],
    ]);
    const alerts = await call<{ creditAlerts: { edges: { node: { kind: string } }[] } }>(
      `query ($id: ID!) { creditAlerts(subscriptionId: $id) { edges { node { kind } } } }`,
      { id: created.id },
    );
    expect(alerts.creditAlerts.edges).toEqual([]);
    await expectAuditClean();
  }, 30_000);

  it("a balance below its low-balance threshold before and after each renewal raises no alert at renewals", async () => {
    await start({ RECOVERY_INTERVAL: "300ms" });
    const created = (await call<{ createSubscription: any }>(CREATE, { plan: "quick" })).createSubscription;
    await call(`mutation ($input: GrantCreditsInput!) { grantCredits(input: $input) { id } }`, {
      input: { subscriptionId: created.id, type: "ai", amount: 5, reason: "paid top-up" },
    });
    const spend = await server!.gql(RUN_AI, { sub: created.id, amount: 4 }, { token: admin });
    expect(spend.body.errors).toBeUndefined();
    // 11 now (6 unused plan credits, 5 paid), and 18 after each renewal: both below 20.
    await call(`mutation ($input: LowBalanceThresholdInput!) { setLowBalanceThreshold(input: $input) { lowBalance: lowBalanceThreshold } }`, {
      input: { subscriptionId: created.id, type: "ai", lowBalance: 20 },
    });
    await expect
      .poll(async () => (await ledger(created.id)).filter((e) => e.credit_type === "ai" && e.kind === "EXPIRATION").length, { timeout: 10_000, interval: 200 })
      .toBeGreaterThanOrEqual(2);
    expect(ai((await call<{ subscription: any }>(STATE, { id: created.id })).subscription.balances)).toBe(18);
    // With the new period granted first, each renewal went 11, 14, 24, 21, 18 (then 18, 21, 31, 28,
    // 18): up past 20 and back under it, a LOW_BALANCE (and then BALANCE_RECOVERED) at every renewal.
    // Taken out first, it stays under 20 and never reaches 0 (the paid credits stay).
    const alerts = await call<{ creditAlerts: { edges: { node: { kind: string } }[] } }>(
      `query ($id: ID!) { creditAlerts(subscriptionId: $id) { edges { node { kind } } } }`,
      { id: created.id },
    );
    expect(alerts.creditAlerts.edges).toEqual([]);
    await expectAuditClean();
  }, 30_000);

  it("renews, in order, the three periods missed while no instance ran, at the next start", async () => {
    await start();
    const created = (await call<{ createSubscription: any }>(CREATE, { plan: "quick" })).createSubscription;
    expect(ai(created.balances)).toBe(10);
    const spend = await server!.gql(RUN_AI, { sub: created.id, amount: 4 }, { token: admin });
    expect(spend.body.errors).toBeUndefined();
    await server!.close();
    server = undefined;
    const firstEnd = new Date(created.currentPeriodEnd).getTime();
    // No instance runs while three boundaries pass.
    await new Promise((r) => setTimeout(r, Math.max(0, firstEnd + 2_300 - Date.now())));
    const stopped = Date.now();
    await start();
    await expect
      .poll(async () => new Date((await call<{ subscription: any }>(STATE, { id: created.id })).subscription.currentPeriodEnd).getTime(), {
        timeout: 10_000,
        interval: 100,
      })
      .toBeGreaterThan(stopped);
    const grants = await queryRows<{ expires_at: Date | string; amount: number; remaining: number }>(
      database.db,
      sql`select expires_at, amount, remaining from credit_grants where subscription_id = ${created.id}::uuid and credit_type = 'ai' order by seq`,
    );
    // Each period's grants expire one period after the last: in order, no boundary skipped or repeated.
    // (At least the three missed; a slow start may let a fourth boundary pass before the first pass.)
    const ends = [...new Set(grants.map((g) => new Date(g.expires_at).getTime()))];
    const renewals = ends.length - 1;
    expect(renewals).toBeGreaterThanOrEqual(3);
    expect(ends).toEqual(Array.from({ length: renewals + 1 }, (_, i) => firstEnd + i * 1_000));
    const entries = (await ledger(created.id)).filter((e) => e.credit_type === "ai");
    // Creation grant, the debit, then per period: rollover in, allowance, rollover out, expiry.
    expect(entries.map((e) => [e.kind, e.amount])).toEqual([
      ["GRANT", 10],
      ["DEBIT", -4],
      ["GRANT", 3], ["GRANT", 10], ["ADJUSTMENT", -3], ["EXPIRATION", -3],
      ...Array.from({ length: renewals - 1 }, () => [["GRANT", 3], ["GRANT", 10], ["ADJUSTMENT", -3], ["EXPIRATION", -10]]).flat(),
    ]);
    // After the last renewal read, 10 of the period and 3 rolled over. Read from the ledger: the
    // balance available goes to 0 at each 1 s boundary until the next pass renews the period, and on
    // a loaded machine a read can miss every window in between (it did, polled for 10 s).
    expect(Number(entries.at(-1)!.balance_after)).toBe(13);
    // leads likewise (2 a period, nothing rolled over): its balance available is 0 from each boundary
    // to that period's renewal too.
    const leads = (await ledger(created.id)).filter((e) => e.credit_type === "leads");
    expect(Number(leads.at(-1)!.balance_after)).toBe(2);
    await expectAuditClean();
  }, 30_000);

  it("a cancelled subscription stops renewing; its last plan credits expire", async () => {
    await start({ RECOVERY_INTERVAL: "300ms" });
    const created = (await call<{ createSubscription: any }>(CREATE, { plan: "quick" })).createSubscription;
    await call(`mutation ($id: ID!) { setSubscriptionStatus(id: $id, status: CANCELLED, reason: "left") { id } }`, { id: created.id });
    await expect
      .poll(async () => (await call<{ subscription: any }>(STATE, { id: created.id })).subscription.currentPeriodEnd, { timeout: 10_000, interval: 200 })
      .toBeNull();
    // Removed by the expiry pass (the balance reads 0 from the period's end: expired credits are not available).
    await expect.poll(async () => (await ledger(created.id)).some((e) => e.kind === "EXPIRATION"), { timeout: 10_000, interval: 200 }).toBe(true);
    expect(ai((await call<{ subscription: any }>(STATE, { id: created.id })).subscription.balances)).toBe(0);
    const entries = (await ledger(created.id)).filter((e) => e.credit_type === "ai");
    expect(entries.map((e) => [e.kind, e.amount])).toEqual([
      ["GRANT", 10],
      ["EXPIRATION", -10],
    ]);
    await expectAuditClean();

    // Reactivated, it is on its plan again: a new first period starts at once (it used to stay
    // without a period, and without plan credits, for good).
    const reactivated = await call<{ setSubscriptionStatus: { currentPeriodEnd: string | null; balances: { type: string; balance: number }[] } }>(
      `mutation ($id: ID!) { setSubscriptionStatus(id: $id, status: ACTIVE, reason: "back") { currentPeriodEnd balances { type balance } } }`,
      { id: created.id },
    );
    expect(new Date(reactivated.setSubscriptionStatus.currentPeriodEnd!).getTime()).toBeGreaterThan(Date.now());
    expect(ai(reactivated.setSubscriptionStatus.balances)).toBe(10);
    await expectAuditClean();
  }, 30_000);

  it("a configured plan that grants nothing (allowances all 0, or none) is listed, but has no period: currentPeriodEnd null", async () => {
    const free = { name: "free", period: "1mo", allowances: {} };
    const zero = { name: "zero", period: "1s", allowances: { ai: { allowance: 0, rolloverMax: 5 } } };
    await start({ PLANS: JSON.stringify([...JSON.parse(PLANS), free, zero]), RECOVERY_INTERVAL: "300ms" });
    const listed = await server!.gql(`{ plans { name period allowances { type amount rolloverMax } } }`);
    // `period`: "" for a plan that grants nothing (it has no period), whatever its configuration gives.
    expect(listed.body.data.plans.slice(2)).toEqual([
      { name: "free", period: "", allowances: [] },
      { name: "zero", period: "", allowances: [{ type: "ai", amount: 0, rolloverMax: 5 }] },
    ]);
    for (const plan of ["free", "zero"]) {
      const created = (await call<{ createSubscription: any }>(CREATE, { plan })).createSubscription;
      // "End of the current plan period; null when the plan grants nothing." (It used to have a
      // period, renewed for ever, that granted nothing.)
      expect(created.currentPeriodEnd).toBeNull();
      expect(ai(created.balances)).toBe(0);
      expect((await call<{ subscription: any }>(STATE, { id: created.id })).subscription.currentPeriodEnd).toBeNull();
      expect(await ledger(created.id)).toEqual([]);
      const periods = await queryRows(database.db, sql`select 1 from plan_periods where subscription_id = ${created.id}::uuid`);
      expect(periods).toEqual([]);
    }
    await expectAuditClean();
  });

  it("a plan the configuration does not know grants nothing and has no period", async () => {
    await start();
    const created = (await call<{ createSubscription: any }>(CREATE, { plan: "enterprise" })).createSubscription;
    expect(created.currentPeriodEnd).toBeNull();
    expect(ai(created.balances)).toBe(0);
    expect(await ledger(created.id)).toEqual([]);

    // Once a configuration knows the plan (a plan added, or one that had left it back again), the
    // first pass of the next start starts its first period (it used to grant nothing for good).
    const enterprise = { name: "enterprise", period: "1h", allowances: { ai: { allowance: 7 } } };
    await start({ PLANS: JSON.stringify([...JSON.parse(PLANS), enterprise]) });
    await expect
      .poll(async () => (await call<{ subscription: any }>(STATE, { id: created.id })).subscription.currentPeriodEnd, { timeout: 10_000, interval: 100 })
      .not.toBeNull();
    const state = (await call<{ subscription: any }>(STATE, { id: created.id })).subscription;
    expect(ai(state.balances)).toBe(7);
    expect(state.grants).toEqual([{ category: "PLAN", amount: 7, remaining: 7, expiresAt: state.currentPeriodEnd }]);
    // A second start finds nothing missing: still one period, one grant.
    await start({ PLANS: JSON.stringify([...JSON.parse(PLANS), enterprise]) });
    await new Promise((r) => setTimeout(r, 300));
    expect((await ledger(created.id)).map((e) => [e.kind, e.amount])).toEqual([["GRANT", 7]]);
    await expectAuditClean();
  }, 30_000);
});
