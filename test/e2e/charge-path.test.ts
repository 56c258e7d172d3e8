/**
 * The charge path over HTTP, on PGlite and PostgreSQL: every refusal (401, 400, 403, 404, 402)
 * leaves the balance and the ledger untouched; a system error refunds, a user-input error keeps the
 * charge; extensions.credits always matches the ledger.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { setSubscriptionStatus } from "../../src/subscriptions/subscription-store.js";
import { auditLedger } from "../../src/ledger/audit.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { adminToken, fundedSubscription, startTestServer, userToken, type TestServer } from "../helpers/test-app.js";
import { ledgerEntries, ledgerState } from "../helpers/ledger-state.js";

const RUN_AI = `mutation Run($s: ID!, $input: AiTaskInput!, $amount: Int) {
  runAiTask(subscriptionId: $s, input: $input, creditAmount: $amount) { output model tokensUsed }
}`;

describe.each(BACKENDS)("charge path over HTTP on %s", (backend) => {
  let database: TestDatabase;
  let server: TestServer;
  let owner: string;
  let stranger: string;
  let admin: string;
  let sub: string;

  beforeAll(async () => {
    database = await createTestDatabase(backend);
    server = await startTestServer({ database, env: { SIMULATE_FAILURES: "1", RATE_LIMIT_DEFAULT: "100000/1m" } });
    owner = await userToken("owner");
    stranger = await userToken("stranger");
    admin = await adminToken();
    sub = await fundedSubscription(database, "owner", { ai: 10, leads: 600, skiptrace: 100 });
  });
  afterAll(async () => {
    await server?.close();
    await database?.dispose();
  });

  it("serves /health and echoes request ids", async () => {
    const health = await fetch(`${server.url}/health`, { headers: { "x-request-id": "trace-123" } });
    expect(health.status).toBe(200);
    expect(health.headers.get("x-request-id")).toBe("trace-123");
    expect(await health.json()).toMatchObject({ status: "ok", database: "up", backend });
    const generated = await server.gql("{ creditTypes { name } }");
    expect(generated.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("answers viewer and subscription with balances", async () => {
    const res = await server.gql(`{ viewer { id isAdmin subscriptions { id ownerId status balances { type balance } } } }`, {}, { token: owner });
    expect(res.status).toBe(200);
    expect(res.body.data.viewer).toMatchObject({ id: "owner", isAdmin: false });
    expect(res.body.data.viewer.subscriptions).toEqual([
      expect.objectContaining({
        id: sub,
        status: "ACTIVE",
        balances: [
          { type: "ai", balance: 10 },
          { type: "leads", balance: 600 },
          { type: "skiptrace", balance: 100 },
        ],
      }),
    ]);
    const q = `query($id: ID!) { subscription(id: $id) { id balances { type balance } } }`;
    expect((await server.gql(q, { id: sub }, { token: admin })).body.data.subscription.id).toBe(sub);
    const forbidden = await server.gql(q, { id: sub }, { token: stranger });
    expect([forbidden.status, forbidden.body.errors?.[0].extensions.code]).toEqual([403, "FORBIDDEN"]);
    const missing = await server.gql(q, { id: "00000000-0000-4000-8000-000000000000" }, { token: owner });
    expect([missing.status, missing.body.errors?.[0].extensions.code]).toEqual([404, "NOT_FOUND"]);
    const malformed = await server.gql(q, { id: "not-a-uuid" }, { token: owner });
    expect([malformed.status, malformed.body.errors?.[0].extensions.code]).toEqual([404, "NOT_FOUND"]);
    const huge = await server.gql(q, { id: "x".repeat(100_000) }, { token: owner });
    expect([huge.status, huge.body.errors?.[0].extensions.code]).toEqual([404, "NOT_FOUND"]);
    expect(huge.body.errors![0].message.length).toBeLessThan(200);
    const anonymous = await server.gql(`{ viewer { id } }`);
    expect([anonymous.status, anonymous.body.errors?.[0].extensions.code]).toEqual([401, "UNAUTHENTICATED"]);
  });

  it("charges the priced amount and reports it in extensions.credits, matching the ledger", async () => {
    const res = await server.gql(RUN_AI, { s: sub, input: { prompt: "x".repeat(400), maxTokens: 1500 } }, { token: owner });
    expect(res.status).toBe(200);
    expect(res.body.data.runAiTask.model).toBe("SMALL");
    const credits = res.body.extensions!.credits;
    // ceil((ceil(400/4) + 1500) / 1000) = 2
    expect(credits.charges).toEqual([
      {
        path: ["runAiTask"],
        operation: "Mutation.runAiTask",
        subscriptionId: sub,
        type: "ai",
        estimated: 2,
        charged: 2,
        refunded: 0,
        remaining: 8,
        entryId: expect.any(String),
        adminOverride: false,
        fallback: false,
      },
    ]);
    expect(credits.remaining).toEqual({ [sub]: { ai: 8 } });
    const entries = await ledgerEntries(database, sub);
    const debit = entries.find((e) => e.id === credits.charges[0].entryId)!;
    expect(debit).toMatchObject({ kind: "DEBIT", amount: -2, balance_after: 8, operation: "Mutation.runAiTask", estimated: 2, actor_id: "owner" });
    expect(debit.request_id).toBe(res.headers.get("x-request-id"));
  });

  it("charges several metered fields of one operation separately, by alias", async () => {
    const res = await server.gql(
      `mutation($s: ID!) {
        a: searchLeads(subscriptionId: $s, input: { query: "plumbers", limit: 3 }) { total }
        b: searchMls(subscriptionId: $s, input: { area: "Austin", limit: 26, includeHistory: true }) { listings { mlsId } }
        c: lookupPhones(subscriptionId: $s, input: { phones: ["+15555550100", "+15555550101"], carrierLookup: true }) { results { valid } }
      }`,
      { s: sub },
      { token: owner },
    );
    expect(res.status).toBe(200);
    const charges = res.body.extensions!.credits.charges;
    expect(charges.map((c: { path: string[]; charged: number; type: string }) => [c.path[0], c.type, c.charged])).toEqual([
      ["a", "leads", 3],
      ["b", "leads", 4],
      ["c", "skiptrace", 4],
    ]);
    expect(res.body.extensions!.credits.remaining).toEqual({ [sub]: { leads: 593, skiptrace: 96 } });
  });

  describe("refusals move nothing", () => {
    const cases: [string, () => Promise<{ token?: string; vars: Record<string, unknown>; headers?: Record<string, string> }>, number, string][] = [
      ["no token", async () => ({ vars: { s: sub, input: { prompt: "hi" } } }), 401, "UNAUTHENTICATED"],
      ["a forged token", async () => ({ token: `${await userToken("owner")}x`, vars: { s: sub, input: { prompt: "hi" } } }), 401, "UNAUTHENTICATED"],
      ["an empty subscriptionId", async () => ({ token: owner, vars: { s: "", input: { prompt: "hi" } } }), 400, "BAD_USER_INPUT"],
      ["maxTokens out of range", async () => ({ token: owner, vars: { s: sub, input: { prompt: "hi", maxTokens: 8193 } } }), 400, "BAD_USER_INPUT"],
      ["an empty prompt", async () => ({ token: owner, vars: { s: sub, input: { prompt: "" } } }), 400, "BAD_USER_INPUT"],
      ["an unknown enum value", async () => ({ token: owner, vars: { s: sub, input: { prompt: "hi", model: "HUGE" } } }), 400, "BAD_USER_INPUT"],
      ["a negative creditAmount", async () => ({ token: admin, vars: { s: sub, input: { prompt: "hi" }, amount: -1 } }), 400, "BAD_USER_INPUT"],
      ["an unknown subscription", async () => ({ token: owner, vars: { s: "00000000-0000-4000-8000-000000000000", input: { prompt: "hi" } } }), 404, "NOT_FOUND"],
      ["a malformed subscription id", async () => ({ token: owner, vars: { s: "1; drop table credit_ledger", input: { prompt: "hi" } } }), 404, "NOT_FOUND"],
      ["someone else's subscription", async () => ({ token: stranger, vars: { s: sub, input: { prompt: "hi" } } }), 403, "FORBIDDEN"],
      ["creditAmount from a non-admin", async () => ({ token: owner, vars: { s: sub, input: { prompt: "hi" }, amount: 0 } }), 403, "FORBIDDEN"],
      ["more than the balance", async () => ({ token: owner, vars: { s: sub, input: { prompt: "hi", model: "LARGE", maxTokens: 8192 } } }), 402, "INSUFFICIENT_CREDITS"],
    ];

    it.each(cases)("%s", async (_name, make, status, code) => {
      const before = await ledgerState(database, sub);
      const { token, vars } = await make();
      const res = await server.gql(RUN_AI, vars, { token });
      expect(res.status).toBe(status);
      expect(res.body.errors).toHaveLength(1);
      expect(res.body.errors![0].extensions.code).toBe(code);
      expect(res.body.errors![0].extensions.requestId).toBe(res.headers.get("x-request-id"));
      expect(await ledgerState(database, sub)).toEqual(before);
      if (res.body.extensions?.credits) expect(res.body.extensions.credits.charges).toEqual([]);
    });

    it("INSUFFICIENT_CREDITS says what is needed and what is there", async () => {
      const res = await server.gql(RUN_AI, { s: sub, input: { prompt: "hi", model: "LARGE", maxTokens: 8192 } }, { token: owner });
      const { balances } = await ledgerState(database, sub);
      expect(res.body.errors![0]).toMatchObject({
        message: `Insufficient credits: ai needs 45, ${balances.ai} available`,
        extensions: { code: "INSUFFICIENT_CREDITS", creditType: "ai", required: 45, available: balances.ai, subscriptionId: sub },
      });
      expect(res.body.extensions!.credits).toEqual({ charges: [], remaining: { [sub]: { ai: balances.ai } } });
    });

    it("an inactive subscription cannot spend", async () => {
      const suspended = await fundedSubscription(database, "owner", { ai: 5 });
      await setSubscriptionStatus(database.db, suspended, "SUSPENDED", "test");
      const before = await ledgerState(database, suspended);
      const res = await server.gql(RUN_AI, { s: suspended, input: { prompt: "hi" } }, { token: owner });
      expect([res.status, res.body.errors![0].extensions.code]).toEqual([403, "FORBIDDEN"]);
      expect(res.body.errors![0].message).toMatch(/SUSPENDED/);
      expect(await ledgerState(database, suspended)).toEqual(before);
    });
  });

  it("a system error refunds the whole charge and is masked", async () => {
    const before = await ledgerState(database, sub);
    const res = await server.gql(RUN_AI, { s: sub, input: { prompt: "hi" } }, { token: owner, headers: { "x-simulate-failure": "system" } });
    expect(res.status).toBe(500);
    expect(res.body.errors![0].extensions.code).toBe("INTERNAL_SERVER_ERROR");
    expect(res.body.errors![0].message).not.toMatch(/simulated|outage/);
    expect(res.body.errors![0].extensions.requestId).toBeTruthy();
    const [charge] = res.body.extensions!.credits.charges;
    expect(charge).toMatchObject({ charged: 1, refunded: 1, remaining: before.balances.ai });
    expect(res.body.extensions!.credits.remaining).toEqual({ [sub]: { ai: before.balances.ai } });
    const after = await ledgerState(database, sub);
    expect(after.balances).toEqual(before.balances);
    expect(after.entries).toBe(before.entries + 2);
    const entries = await ledgerEntries(database, sub);
    const refund = entries.at(-1)!;
    expect(refund).toMatchObject({ kind: "REFUND", amount: 1, refund_of: charge.entryId, balance_after: before.balances.ai });
  });

  it("a user-input error from the resolver keeps the charge", async () => {
    const before = await ledgerState(database, sub);
    const res = await server.gql(RUN_AI, { s: sub, input: { prompt: "hi" } }, { token: owner, headers: { "x-simulate-failure": "input" } });
    expect([res.status, res.body.errors![0].extensions.code]).toEqual([400, "BAD_USER_INPUT"]);
    expect(res.body.extensions!.credits.charges[0]).toMatchObject({ charged: 1, refunded: 0, remaining: before.balances.ai - 1 });
    expect((await ledgerState(database, sub)).balances.ai).toBe(before.balances.ai - 1);
  });

  it("admins may set the price, 0 included, and it is recorded as an override", async () => {
    const res = await server.gql(RUN_AI, { s: sub, input: { prompt: "hi", maxTokens: 1500 }, amount: 0 }, { token: admin });
    expect(res.status).toBe(200);
    const [charge] = res.body.extensions!.credits.charges;
    expect(charge).toMatchObject({ estimated: 2, charged: 0, adminOverride: true });
    const entries = await ledgerEntries(database, sub);
    expect(entries.find((e) => e.id === charge.entryId)).toMatchObject({ kind: "DEBIT", amount: 0, admin_override: true, estimated: 2, actor_id: "test-admin" });
  });

  it("every balance still equals the sum of its ledger", async () => {
    expect(await auditLedger(database.db)).toMatchObject({ ok: true, mismatches: [] });
  });
});
