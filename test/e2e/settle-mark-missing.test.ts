/**
 * A hold whose pending mark is deleted by hand while its call runs (an outside DBA audit: `delete from
 * pending_charges …` or a TRUNCATE). The settlement then finds no mark, which the charge path took for
 * a refund by the recovery pass: the response said `refunded` = the hold and `cost: 0`, and a
 * late-settlement alert said the call "ran without being paid for", while no REFUND existed and the
 * whole hold stayed charged. Now the charge says what the ledger has (the hold is the cost, nothing
 * released or refunded) and a failed settlement is reported, naming the missing mark. On PGlite and
 * PostgreSQL.
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../../src/db/database.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { captureLogLines } from "../helpers/log-lines.js";
import { fundedSubscription, startTestServer, userToken, type TestServer } from "../helpers/test-app.js";

const SEARCH_LEADS = `mutation ($s: ID!) { searchLeads(subscriptionId: $s, input: { query: "vanishing marks", limit: 60 }) { total } }`;

describe.each(BACKENDS)("a hold whose pending mark is deleted by hand before it settles, on %s", (backend) => {
  let database: TestDatabase;
  let server: TestServer;
  const { lines, destination } = captureLogLines();

  beforeAll(async () => {
    database = await createTestDatabase(backend);
    server = await startTestServer({ database, env: { LOG_LEVEL: "info" }, logDestination: destination });
  });
  afterAll(async () => {
    await server?.close();
    await database?.dispose();
  });

  it("is reported as it stands in the ledger: the hold is the cost, nothing released or refunded", { timeout: 30_000 }, async () => {
    const owner = `mark-missing-${backend}`;
    const subscriptionId = await fundedSubscription(database, owner, { leads: 1000 });
    const requestId = `mark-missing-${backend}`;
    // Plays the operator: each pending mark of this subscription is deleted as soon as it is written.
    await database.db.execute(sql.raw(`
      create or replace function test_delete_mark() returns trigger language plpgsql as $$
      begin
        delete from pending_charges where subscription_id = new.subscription_id and entry_id = new.entry_id;
        return null;
      end $$`));
    await database.db.execute(
      sql.raw(`create trigger test_delete_mark after insert on pending_charges for each row
               when (new.subscription_id = '${subscriptionId}'::uuid) execute function test_delete_mark()`),
    );
    let res;
    try {
      res = await server.gql(SEARCH_LEADS, { s: subscriptionId }, { token: await userToken(owner), headers: { "x-request-id": requestId } });
    } finally {
      await database.db.execute(sql`drop trigger test_delete_mark on pending_charges`);
    }
    expect(res.body.errors).toBeUndefined();
    const [charge] = res.body.extensions!.credits.charges;
    expect(charge).toMatchObject({ charged: 60, cost: 60, released: 0, refunded: 0 });
    expect(res.body.extensions!.credits.remaining).toEqual({ [subscriptionId]: { leads: 940 } });

    // The ledger agrees: the DEBIT alone, the balance 60 down.
    const entries = await queryRows<{ kind: string; amount: number | string }>(
      database.db,
      sql`select kind, amount from credit_ledger where subscription_id = ${subscriptionId}::uuid and request_id = ${requestId} order by seq`,
    );
    expect(entries.map((e) => [e.kind, Number(e.amount)])).toEqual([["DEBIT", -60]]);
    const [balance] = await queryRows<{ balance: number | string }>(
      database.db,
      sql`select balance from credit_balances where subscription_id = ${subscriptionId}::uuid and credit_type = 'leads'`,
    );
    expect(Number(balance.balance)).toBe(940);

    // Told as a failed settlement naming the missing mark; not as a late settlement of a refunded call.
    const mine = lines.filter((l) => l.requestId === requestId);
    expect(mine.find((l) => l.event === "credits.transaction_failed")).toMatchObject({
      stage: "settle",
      entryId: charge.entryId,
      error: { message: expect.stringMatching(/pending mark was deleted outside the server and no REFUND of it exists/) },
    });
    expect(mine.some((l) => l.event === "credits.late_settlement")).toBe(false);
  });
});
