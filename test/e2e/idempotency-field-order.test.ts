/**
 * Two simultaneous first calls with one Idempotency-Key whose documents list the same metered fields
 * in another order (an outside audit, on PostgreSQL): each claimed the key of its first field, then
 * found its second field's key taken, so both answered 409 and neither ran, in 7 rounds of 10. The
 * keys are now claimed in the order of their field paths, whatever the document's: exactly one runs,
 * the other gets 409 (or, arriving after, the replay). On PGlite and PostgreSQL.
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../../src/db/database.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { fundedSubscription, startTestServer, userToken, type TestServer } from "../helpers/test-app.js";

const A = `a: searchLeads(subscriptionId: $s, input: { query: "order", limit: 2 }) { total }`;
const B = `b: searchLeads(subscriptionId: $s, input: { query: "order", limit: 3 }) { total }`;
const A_THEN_B = `mutation ($s: ID!) { ${A} ${B} }`;
const B_THEN_A = `mutation ($s: ID!) { ${B} ${A} }`;
const ROUNDS = 8;

describe.each(BACKENDS)("one Idempotency-Key on the same fields in two orders at once, on %s", (backend) => {
  let database: TestDatabase;
  let server: TestServer;

  beforeAll(async () => {
    database = await createTestDatabase(backend);
    server = await startTestServer({ database, env: { RATE_LIMIT_DEFAULT: "10000/1m" } });
  });
  afterAll(async () => {
    await server?.close();
    await database?.dispose();
  });

  it("runs exactly one of them, every round", { timeout: 60_000 }, async () => {
    const owner = `field-order-${backend}`;
    const subscriptionId = await fundedSubscription(database, owner, { leads: 1000 });
    const token = await userToken(owner);
    for (let round = 0; round < ROUNDS; round++) {
      const headers = { "idempotency-key": `field-order-${backend}-${round}` };
      const answers = await Promise.all([A_THEN_B, B_THEN_A].map((query) => server.gql(query, { s: subscriptionId }, { token, headers })));
      const ran = answers.filter((res) => res.status === 200 && !res.body.extensions!.credits.charges.some((c: { replayed?: boolean }) => c.replayed));
      const others = answers.filter((res) => !ran.includes(res));
      expect(ran, `round ${round}: ${answers.map((res) => res.status).join(", ")}`).toHaveLength(1);
      for (const res of others) {
        const replayed = res.status === 200 && res.body.extensions!.credits.charges.every((c: { replayed?: boolean }) => c.replayed);
        expect(res.status === 409 || replayed, `round ${round}: ${res.status}`).toBe(true);
      }
    }
    // One hold per field per round: nothing ran twice.
    const [{ n }] = await queryRows<{ n: number | string }>(
      database.db,
      sql`select count(*) as n from credit_ledger where subscription_id = ${subscriptionId}::uuid and kind = 'DEBIT'`,
    );
    expect(Number(n)).toBe(2 * ROUNDS);
  });
});
