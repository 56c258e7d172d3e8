/**
 * A settlement cut off by a lost connection is tried once more, so a successful call is not later
 * refunded by the recovery pass; whether the first attempt committed or not, the answer is right.
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows, type Database } from "../../src/db/database.js";
import { debitCredits } from "../../src/ledger/debit.js";
import { refundPendingCharge } from "../../src/ledger/settle.js";
import { createSettlementBatcher } from "../../src/ledger/settlement-batcher.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { fundedSubscription } from "../helpers/test-app.js";

/** The real database, but its first statement fails: before running (`before`) or after committing (`after`). */
function flakyOnce(db: Database, when: "before" | "after"): Database {
  let failed = false;
  return new Proxy(db, {
    get(target, prop, receiver) {
      if (prop !== "execute") return Reflect.get(target, prop, receiver);
      return async (query: unknown) => {
        if (!failed && when === "before") {
          failed = true;
          throw Object.assign(new Error("Connection terminated unexpectedly"), { code: "57P01" });
        }
        const result = await (target.execute as (q: unknown) => Promise<unknown>)(query);
        if (!failed) {
          failed = true;
          throw new Error("Connection terminated unexpectedly");
        }
        return result;
      };
    },
  });
}

describe.each(BACKENDS)("settlement after a lost connection on %s", (backend) => {
  let database: TestDatabase;
  let subscriptionId: string;

  beforeAll(async () => {
    database = await createTestDatabase(backend);
    subscriptionId = await fundedSubscription(database, "settle-owner", { ai: 10 });
  });
  afterAll(() => database?.dispose());

  async function pendingDebit(): Promise<string> {
    const outcome = await debitCredits(database.db, {
      subscriptionId,
      creditType: "ai",
      amount: 1,
      operation: "Mutation.runAiTask",
      estimated: 1,
      actorId: "settle-owner",
      adminOverride: false,
      requestId: "settle-test",
    });
    if (!outcome.ok) throw new Error("debit refused");
    return outcome.entryId;
  }

  const pendingCount = async () =>
    Number((await queryRows<{ n: string | number }>(database.db, sql`select count(*) as n from pending_charges`))[0].n);

  it.each(["before", "after"] as const)("a statement lost %s it ran is retried and the charge is settled", async (when) => {
    const entryId = await pendingDebit();
    const batcher = createSettlementBatcher(flakyOnce(database.db, when));
    expect(await batcher.settle(subscriptionId, entryId)).toBe(true);
    expect(await pendingCount()).toBe(0);
  });

  it("a charge the recovery pass refunded meanwhile is still reported as not settled", async () => {
    const entryId = await pendingDebit();
    await refundPendingCharge(database.db, { subscriptionId, entryId, reason: "recovery: unsettled charge", actorId: null, requestId: null });
    const batcher = createSettlementBatcher(flakyOnce(database.db, "before"));
    expect(await batcher.settle(subscriptionId, entryId)).toBe(false);
  });
});
