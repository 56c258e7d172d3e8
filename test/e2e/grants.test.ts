/**
 * Grants over HTTP, on PGlite and PostgreSQL (issue 17): categories, priorities and expiries set by
 * grantCredits, the spending order of a hold, expiry by the recovery pass, a refund that gives credits
 * back to an expired grant (they expire at once), adjustments as grants and draws, the validation of
 * the new inputs, and ledgerAudit clean at every step.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sql } from "drizzle-orm";
import { queryRows } from "../../src/db/database.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { adminToken, startTestServer, userToken, type TestServer } from "../helpers/test-app.js";

const OWNER = "grants-owner";

const ENTRY = "id kind amount balanceAfter refundOf reason draws { grantId amount }";
const CREATE = `mutation ($ownerId: ID!) { createSubscription(input: { ownerId: $ownerId, plan: "none" }) { id } }`;
const GRANT = `mutation ($input: GrantCreditsInput!) { grantCredits(input: $input) { ${ENTRY} } }`;
const ADJUST = `mutation ($input: AdjustCreditsInput!) { adjustCredits(input: $input) { ${ENTRY} } }`;
const REFUND = `mutation ($input: RefundChargeInput!) { refundCharge(input: $input) { ${ENTRY} } }`;
const RUN_AI = `mutation ($sub: ID!, $amount: Int) { runAiTask(subscriptionId: $sub, input: { prompt: "hi" }, creditAmount: $amount) { __typename } }`;
const AUDIT = `query { ledgerAudit { ok mismatches { subscriptionId type balance ledgerSum } } }`;
const STATE = `query ($id: ID!, $spent: Boolean) { subscription(id: $id) {
  balances { type balance }
  grants(type: "ai", includeSpent: $spent) { id category amount remaining priority expiresAt reason }
} }`;
const LEDGER = `query ($id: ID!) { creditLedger(subscriptionId: $id, first: 50) { edges { node { ${ENTRY} } } } }`;

describe.each(BACKENDS)("grants on %s", (backend) => {
  let database: TestDatabase;
  let server: TestServer;
  let ADMIN: string;

  beforeAll(async () => {
    ADMIN = await adminToken("grants-admin");
    database = await createTestDatabase(backend);
    // The recovery pass (and with it expiry) every 500 ms.
    server = await startTestServer({ database, env: { RECOVERY_INTERVAL: "500ms" } });
  });
  afterAll(async () => {
    await server?.close();
    await database?.dispose();
  });

  async function admin<T = any>(query: string, variables?: Record<string, unknown>): Promise<T> {
    const res = await server.gql<T>(query, variables, { token: ADMIN });
    expect(res.body.errors, JSON.stringify(res.body.errors)).toBeUndefined();
    return res.body.data as T;
  }

  async function newSubscription(): Promise<string> {
    return (await admin<{ createSubscription: { id: string } }>(CREATE, { ownerId: OWNER })).createSubscription.id;
  }

  async function state(id: string, spent = false) {
    const data = await admin<{ subscription: { balances: { type: string; balance: number }[]; grants: any[] } }>(STATE, { id, spent });
    return { ai: data.subscription.balances.find((b) => b.type === "ai")!.balance, grants: data.subscription.grants };
  }

  async function ledger(id: string): Promise<any[]> {
    const data = await admin<{ creditLedger: { edges: { node: any }[] } }>(LEDGER, { id });
    return data.creditLedger.edges.map((e) => e.node).reverse();
  }

  async function expectAuditClean(): Promise<void> {
    expect((await admin<{ ledgerAudit: unknown }>(AUDIT)).ledgerAudit).toEqual({ ok: true, mismatches: [] });
  }

  async function grant(sub: string, amount: number, extra: Record<string, unknown> = {}) {
    return (await admin<{ grantCredits: any }>(GRANT, { input: { subscriptionId: sub, type: "ai", amount, reason: "test", ...extra } })).grantCredits;
  }

  async function debit(sub: string, amount: number): Promise<void> {
    const res = await server.gql(RUN_AI, { sub, amount }, { token: ADMIN });
    expect(res.body.errors, JSON.stringify(res.body.errors)).toBeUndefined();
  }

  it("a hold draws the promotional grant first; expiry removes its rest; a refund after the expiry expires at once", async () => {
    const sub = await newSubscription();
    const paid = await grant(sub, 10);
    const promoExpiresAt = new Date(Date.now() + 3_000).toISOString();
    const promo = await grant(sub, 5, { category: "PROMOTIONAL", priority: 10, expiresAt: promoExpiresAt });
    expect(paid.draws).toHaveLength(1);
    expect(promo.draws).toEqual([{ grantId: promo.draws[0].grantId, amount: 5 }]);
    const promoGrant = promo.draws[0].grantId as string;
    const paidGrant = paid.draws[0].grantId as string;
    let s = await state(sub);
    expect(s.ai).toBe(15);
    // Spending order: priority 10 before 50.
    expect(s.grants.map((g) => [g.id, g.category, g.priority, g.remaining])).toEqual([
      [promoGrant, "PROMOTIONAL", 10, 5],
      [paidGrant, "PAID", 50, 10],
    ]);
    await expectAuditClean();

    await debit(sub, 3);
    const debitEntry = (await ledger(sub)).find((e) => e.kind === "DEBIT");
    expect(debitEntry.draws).toEqual([{ grantId: promoGrant, amount: 3 }]);
    s = await state(sub);
    expect(s.ai).toBe(12);
    expect(s.grants.map((g) => g.remaining)).toEqual([2, 10]);
    await expectAuditClean();

    // After the expiry, within a recovery interval: an EXPIRATION of the 2 promotional credits left.
    // (The balance reads 10 from the expiry on: expired credits are not available, removed or not.)
    await expect.poll(async () => (await ledger(sub)).filter((e) => e.kind === "EXPIRATION").length, { timeout: 8_000, interval: 200 }).toBe(1);
    expect((await state(sub)).ai).toBe(10);
    let entries = await ledger(sub);
    const expirations = entries.filter((e) => e.kind === "EXPIRATION");
    // Within a recovery interval of the expiry (500 ms here; 2 s allowed for a loaded machine).
    const [{ created_at: expiredAt }] = await queryRows<{ created_at: Date | string }>(
      database.db,
      sql`select created_at from credit_ledger where subscription_id = ${sub}::uuid and kind = 'EXPIRATION'`,
    );
    expect(new Date(expiredAt).getTime() - new Date(promoExpiresAt).getTime()).toBeLessThan(2_000);
    expect(expirations).toEqual([expect.objectContaining({ amount: -2, balanceAfter: 10, draws: [{ grantId: promoGrant, amount: 2 }] })]);
    s = await state(sub);
    expect(s.grants.map((g) => g.id)).toEqual([paidGrant]);
    expect((await state(sub, true)).grants.find((g) => g.id === promoGrant)).toMatchObject({ remaining: 0, amount: 5 });
    await expectAuditClean();

    // A refund of the debit: its 3 credits go back to the expired promotional grant and expire at once.
    const refund = (await admin<{ refundCharge: any }>(REFUND, { input: { entryId: debitEntry.id, reason: "late refund" } })).refundCharge;
    expect(refund).toMatchObject({ kind: "REFUND", amount: 3, balanceAfter: 13, draws: [{ grantId: promoGrant, amount: 3 }] });
    entries = await ledger(sub);
    expect(entries.at(-1)).toMatchObject({ kind: "EXPIRATION", amount: -3, balanceAfter: 10, draws: [{ grantId: promoGrant, amount: 3 }] });
    expect((await state(sub)).ai).toBe(10);
    await expectAuditClean();
  }, 30_000);

  it("a positive adjustment is a PAID grant; a negative one draws in order and never from expired credits", async () => {
    const sub = await newSubscription();
    const promo = await grant(sub, 5, { category: "PROMOTIONAL", priority: 0 });
    const up = (await admin<{ adjustCredits: any }>(ADJUST, { input: { subscriptionId: sub, type: "ai", delta: 4, reason: "fix" } })).adjustCredits;
    const [adjusted] = (await state(sub, true)).grants.filter((g) => g.id === up.draws[0].grantId);
    expect(adjusted).toMatchObject({ category: "PAID", priority: 50, amount: 4, remaining: 4, expiresAt: null });
    const down = (await admin<{ adjustCredits: any }>(ADJUST, { input: { subscriptionId: sub, type: "ai", delta: -7, reason: "fix" } })).adjustCredits;
    expect(down.draws).toEqual([
      { grantId: promo.draws[0].grantId, amount: 5 },
      { grantId: up.draws[0].grantId, amount: 2 },
    ]);
    const over = await server.gql(ADJUST, { input: { subscriptionId: sub, type: "ai", delta: -3, reason: "fix" } }, { token: ADMIN });
    expect(over.body.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
    expect((await state(sub)).ai).toBe(2);
    await expectAuditClean();
  }, 30_000);

  it("refuses a priority outside 0–100, an expiry in the past and an unknown category, and changes nothing", async () => {
    const sub = await newSubscription();
    const before = await ledger(sub);
    for (const [extra, field] of [
      [{ priority: 101 }, "priority"],
      [{ priority: -1 }, "priority"],
      [{ expiresAt: new Date(Date.now() - 1_000).toISOString() }, "expiresAt"],
    ] as const) {
      const res = await server.gql(GRANT, { input: { subscriptionId: sub, type: "ai", amount: 1, reason: "x", ...extra } }, { token: ADMIN });
      expect(res.body.errors?.[0]?.extensions?.code, field).toBe("BAD_USER_INPUT");
      expect(res.body.errors?.[0]?.message).toContain(field);
    }
    const badCategory = await server.gql(GRANT, { input: { subscriptionId: sub, type: "ai", amount: 1, reason: "x", category: "FREE" } }, { token: ADMIN });
    expect(badCategory.status).toBe(400);
    expect(badCategory.body.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
    expect(await ledger(sub)).toEqual(before);
    const [{ n }] = await queryRows<{ n: string | number }>(database.db, sql`select count(*) as n from credit_grants where subscription_id = ${sub}::uuid`);
    expect(Number(n)).toBe(0);
  });

  it("owners read their grants; others are refused", async () => {
    const sub = await newSubscription();
    await grant(sub, 2);
    const own = await server.gql(STATE, { id: sub }, { token: await userToken(OWNER) });
    expect(own.body.data.subscription.grants).toHaveLength(1);
    const other = await server.gql(STATE, { id: sub }, { token: await userToken("someone-else") });
    expect(other.body.errors?.[0]?.extensions?.code).toBe("FORBIDDEN");
  });

  it("refuses an unknown credit type in grants(type:) with 400, as every other type argument does", async () => {
    const sub = await newSubscription();
    const res = await server.gql(`query ($id: ID!) { subscription(id: $id) { grants(type: "gold") { id } } }`, { id: sub }, { token: ADMIN });
    expect(res.status).toBe(400);
    expect(res.body.errors![0].extensions).toMatchObject({ code: "BAD_USER_INPUT", field: "type" });
    expect(res.body.errors![0].message).toMatch(/gold/);
  });
});

describe.each(BACKENDS)("creditPreview before the expiry pass on %s", (backend) => {
  let database: TestDatabase;
  let server: TestServer;
  let ADMIN: string;

  beforeAll(async () => {
    ADMIN = await adminToken("grants-admin");
    database = await createTestDatabase(backend);
    // No expiry pass during the test: expired credits stay in the balance row.
    server = await startTestServer({ database, env: { RECOVERY_INTERVAL: "1h" } });
  });
  afterAll(async () => {
    await server?.close();
    await database?.dispose();
  });

  it("does not count credits that have expired: it says insufficient exactly when the hold refuses", async () => {
    const sub = (await server.gql<any>(CREATE, { ownerId: OWNER }, { token: ADMIN })).body.data.createSubscription.id as string;
    const grant = (amount: number, extra: Record<string, unknown> = {}) =>
      server.gql(GRANT, { input: { subscriptionId: sub, type: "ai", amount, reason: "test", ...extra } }, { token: ADMIN });
    await grant(2);
    await grant(10, { category: "PROMOTIONAL", priority: 10, expiresAt: new Date(Date.now() + 500).toISOString() });
    await new Promise((r) => setTimeout(r, 700));

    const preview = (creditAmount: number) =>
      server.gql<any>(
        `query ($i: CreditPreviewInput!) { creditPreview(input: $i) { totals { type amount } balances { type balance } sufficient } }`,
        { i: { subscriptionId: sub, query: `mutation { runAiTask(subscriptionId: "${sub}", input: { prompt: "hi" }, creditAmount: ${creditAmount}) { __typename } }` } },
        { token: ADMIN },
      );
    // The subscription's balance says the same: credits available, the expired ones left out (it
    // used to say 12 here, for a call the hold then refused).
    const read = await server.gql<any>(`query ($id: ID!) { subscription(id: $id) { balances { type balance } } }`, { id: sub }, { token: ADMIN });
    expect(read.body.data.subscription.balances.find((b: { type: string }) => b.type === "ai")).toEqual({ type: "ai", balance: 2 });
    const tooMuch = (await preview(3)).body.data.creditPreview;
    expect(tooMuch).toEqual({ totals: [{ type: "ai", amount: 3 }], balances: [{ type: "ai", balance: 2 }], sufficient: false });
    const refused = await server.gql(RUN_AI, { sub, amount: 3 }, { token: ADMIN });
    expect(refused.body.errors?.[0]?.extensions).toMatchObject({ code: "INSUFFICIENT_CREDITS", required: 3, available: 2 });

    // An adjustment counts the same credits, and its refusal says why the balance shown is not spendable.
    const adjusted = await server.gql<any>(
      `mutation ($input: AdjustCreditsInput!) { adjustCredits(input: $input) { id } }`,
      { input: { subscriptionId: sub, type: "ai", delta: -3, reason: "test" } },
      { token: ADMIN },
    );
    expect(adjusted.body.errors?.[0]).toMatchObject({
      message: expect.stringMatching(/would take the ai balance below zero: .*credits of grants that have expired count for nothing/),
      extensions: { code: "BAD_USER_INPUT" },
    });

    expect((await preview(2)).body.data.creditPreview.sufficient).toBe(true);
    const ran = await server.gql(RUN_AI, { sub, amount: 2 }, { token: ADMIN });
    expect(ran.body.errors).toBeUndefined();
  });
});
