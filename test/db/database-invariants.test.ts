import { sql } from "drizzle-orm";
import { holdOne, postHold, voidHold } from "../helpers/ledger-commands.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { fundedSubscription } from "../helpers/test-app.js";
import { queryRows } from "../../src/db/database.js";
import { sqlState } from "../../src/db/errors.js";
import { auditLedger } from "../../src/ledger/audit.js";

async function failure(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error("expected the statement to fail");
}

/** The driver's own message, under Drizzle's wrapping (DrizzleQueryError keeps it as its cause). */
function causeMessage(err: unknown): string {
  let current = err as { message?: string; cause?: unknown };
  while (current.cause && typeof current.cause === "object") current = current.cause as typeof current;
  return String(current.message);
}

describe.each(BACKENDS)("database invariants on %s", (backend) => {
  let database: TestDatabase;
  let subscriptionId: string;

  beforeAll(async () => {
    database = await createTestDatabase(backend);
    subscriptionId = await fundedSubscription(database, "owner-1", { ai: 10 });
  });
  afterAll(() => database?.dispose());

  it("applies every migration (tables and triggers exist)", async () => {
    const tables = await queryRows<{ table_name: string }>(
      database.db,
      sql`select table_name from information_schema.tables where table_schema = 'public' order by table_name`,
    );
    expect(tables.map((t) => t.table_name)).toEqual(
      expect.arrayContaining(["billing_subscriptions", "credit_balances", "credit_ledger", "pending_charges", "credit_alerts", "idempotency_keys"]),
    );
    const triggers = await queryRows<{ tgname: string }>(database.db, sql`select tgname from pg_trigger where not tgisinternal order by tgname`);
    expect(triggers.map((t) => t.tgname)).toEqual(
      expect.arrayContaining(["credit_ledger_no_update_delete", "credit_ledger_no_truncate", "credit_ledger_refund_limit"]),
    );
  });

  it("CHECK refuses a negative balance", async () => {
    const err = await failure(
      database.db.execute(sql`update credit_balances set balance = -1 where subscription_id = ${subscriptionId}::uuid and credit_type = 'ai'`),
    );
    expect(sqlState(err)).toBe("23514");
  });

  it("the ledger refuses UPDATE, DELETE and TRUNCATE", async () => {
    for (const statement of [
      sql`update credit_ledger set amount = 1000 where subscription_id = ${subscriptionId}::uuid`,
      sql`delete from credit_ledger where subscription_id = ${subscriptionId}::uuid`,
      sql`truncate credit_ledger`,
    ]) {
      const err = (await failure(database.db.execute(statement))) as Error;
      expect(sqlState(err)).toBe("P0001");
    }
    const rows = await queryRows<{ n: number | string }>(database.db, sql`select count(*) as n from credit_ledger`);
    expect(Number(rows[0].n)).toBe(1);
  });

  it("a debit takes only what is there and writes one ledger entry with the balance after it", async () => {
    const ok = await holdOne(database.db, {
      subscriptionId,
      creditType: "ai",
      amount: 4,
      operation: "Mutation.test",
      estimated: 4,
      actorId: "owner-1",
      adminOverride: false,
      requestId: "r1",
    });
    expect(ok).toMatchObject({ ok: true, balanceAfter: 6 });
    const refused = await holdOne(database.db, {
      subscriptionId,
      creditType: "ai",
      amount: 7,
      operation: "Mutation.test",
      estimated: 7,
      actorId: "owner-1",
      adminOverride: false,
      requestId: "r2",
    });
    expect(refused).toEqual({ ok: false, reason: "insufficient", available: 6 });
    const audit = await auditLedger(database.db);
    expect(audit.ok).toBe(true);
    expect(audit.checkedBalances).toBe(3);
  });

  it("a refund can never exceed what its debit has left", async () => {
    const debit = await holdOne(database.db, {
      subscriptionId,
      creditType: "ai",
      amount: 3,
      operation: "Mutation.test",
      estimated: 3,
      actorId: "owner-1",
      adminOverride: false,
      requestId: "r3",
    });
    if (!debit.ok) throw new Error("debit failed");
    const insertRefund = (amount: number) =>
      database.db.execute(sql`
        insert into credit_ledger (subscription_id, credit_type, kind, amount, balance_after, refund_of)
        values (${subscriptionId}::uuid, 'ai', 'REFUND', ${amount}::int, 0, ${debit.entryId}::uuid)`);
    await insertRefund(2);
    expect(sqlState(await failure(insertRefund(2)))).toBe("23514");
    await insertRefund(1);
    expect(sqlState(await failure(insertRefund(1)))).toBe("23514");
  });

  it("a refund of another credit type than its debit is refused, though the amount would fit", async () => {
    const debit = await holdOne(database.db, {
      subscriptionId,
      creditType: "ai",
      amount: 2,
      operation: "Mutation.test",
      estimated: 2,
      actorId: "owner-1",
      adminOverride: false,
      requestId: "r4",
    });
    if (!debit.ok) throw new Error("debit failed");
    const err = await failure(
      database.db.execute(sql`
        insert into credit_ledger (subscription_id, credit_type, kind, amount, balance_after, refund_of)
        values (${subscriptionId}::uuid, 'leads', 'REFUND', 1, 1, ${debit.entryId}::uuid)`),
    );
    expect(sqlState(err)).toBe("23514");
    expect(causeMessage(err)).toBe(`refund_of ${debit.entryId} is not a DEBIT of this subscription and credit type`);
    const refunds = await queryRows<{ n: number | string }>(database.db, sql`select count(*) as n from credit_ledger where refund_of = ${debit.entryId}::uuid`);
    expect(Number(refunds[0].n)).toBe(0);
  });
});
