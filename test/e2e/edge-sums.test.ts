/**
 * Sums past 2^31-1 (issue 15, item 6): usage totals and preview totals are SafeInt, so a busy
 * account's creditStats and a preview of two maximal admin overrides answer instead of failing
 * GraphQL's 32-bit Int serialization (a 500 before).
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../../src/db/database.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { adminToken, fundedSubscription, startTestServer, type TestServer } from "../helpers/test-app.js";

const MAX_INT = 2 ** 31 - 1;

describe.each(BACKENDS)("sums past 2^31-1 on %s", (backend) => {
  let database: TestDatabase;
  let server: TestServer;
  let admin: string;
  let subscriptionId: string;

  beforeAll(async () => {
    database = await createTestDatabase(backend);
    server = await startTestServer({ database });
    admin = await adminToken();
    subscriptionId = await fundedSubscription(database, "big-spender", { ai: 10 });
    // Usage reads only the ledger: two debits of 2,000,000,000 seeded directly (no balance could fund them).
    for (let i = 0; i < 2; i++) {
      await queryRows(
        database.db,
        sql`insert into credit_ledger (subscription_id, credit_type, kind, amount, balance_after, operation, actor_id)
            values (${subscriptionId}::uuid, 'ai', 'DEBIT', -2000000000, 0, 'Mutation.runAiTask', 'big-spender') returning id`,
      );
    }
  }, 120_000);
  afterAll(async () => {
    await server?.close();
    await database?.dispose();
  });

  it("creditStats and creditUsage total 4,000,000,000 credits", async () => {
    const stats = await server.gql(`{ creditStats(groupBy: TYPE) { key calls credits refunded } }`, undefined, { token: admin });
    expect(stats.status).toBe(200);
    expect(stats.body.errors).toBeUndefined();
    expect(stats.body.data.creditStats).toContainEqual({ key: "ai", calls: 2, credits: 4_000_000_000, refunded: 0 });
    const usage = await server.gql(`query($s: ID!) { creditUsage(subscriptionId: $s, groupBy: OPERATION) { key credits } }`, { s: subscriptionId }, { token: admin });
    expect(usage.body.errors).toBeUndefined();
    expect(usage.body.data.creditUsage).toEqual([{ key: "Mutation.runAiTask", credits: 4_000_000_000 }]);
  });

  // The largest total a hold may take is the largest balance: a call charging exactly that is held
  // and charged, only a total above it is refused before the database.
  it("an admin override of exactly 2^31-1 on a balance of 2^31-1 is charged in full and leaves 0", async () => {
    const full = await fundedSubscription(database, "big-spender", { ai: MAX_INT });
    const res = await server.gql(
      `mutation($s: ID!) { runAiTask(subscriptionId: $s, input: {prompt: "all of it"}, creditAmount: ${MAX_INT}) { output } }`,
      { s: full },
      { token: admin },
    );
    expect(res.status).toBe(200);
    expect(res.body.errors).toBeUndefined();
    expect(res.body.extensions!.credits.charges).toHaveLength(1);
    expect(res.body.extensions!.credits.charges[0]).toMatchObject({ charged: MAX_INT, cost: MAX_INT, remaining: 0 });
    const [balance] = await queryRows<{ balance: number }>(
      database.db,
      sql`select balance from credit_balances where subscription_id = ${full}::uuid and credit_type = 'ai'`,
    );
    expect(Number(balance.balance)).toBe(0);
  });

  it("a preview of two maximal admin overrides totals 2 × (2^31-1)", async () => {
    const query = `mutation($s: ID!) {
      a: runAiTask(subscriptionId: $s, input: {prompt: "a"}, creditAmount: ${MAX_INT}) { output }
      b: runAiTask(subscriptionId: $s, input: {prompt: "b"}, creditAmount: ${MAX_INT}) { output } }`;
    const preview = await server.gql(
      `query($input: CreditPreviewInput!) { creditPreview(input: $input) { items { amount } totals { type amount } sufficient } }`,
      { input: { subscriptionId, query, variables: { s: subscriptionId } } },
      { token: admin },
    );
    expect(preview.status).toBe(200);
    expect(preview.body.errors).toBeUndefined();
    expect(preview.body.data.creditPreview).toEqual({
      items: [{ amount: MAX_INT }, { amount: MAX_INT }],
      totals: [{ type: "ai", amount: 2 * MAX_INT }],
      sufficient: false,
    });
  });
});
