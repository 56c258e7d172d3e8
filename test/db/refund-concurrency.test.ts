/**
 * Concurrent admin refunds of one debit on real PostgreSQL (separate pool connections, really in
 * parallel): the refunds of a debit never add up to more than it took, however they interleave.
 * The guard is the credit_ledger_refund_limit trigger; these tests check that refundCharge relies on
 * it correctly and turns the loser's refusal into a clear BAD_USER_INPUT, with nothing changed.
 */
import { sql } from "drizzle-orm";
import { holdOne, postHold, voidHold } from "../helpers/ledger-commands.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { refundCharge } from "../../src/admin/refund.js";
import { queryRows } from "../../src/db/database.js";
import { BadUserInputError } from "../../src/errors/errors.js";
import { auditLedger } from "../../src/ledger/audit.js";
import type { LedgerEntryRecord } from "../../src/ledger/entry.js";
import { createPostgresDatabase, type TestDatabase } from "../helpers/databases.js";
import { postgresAvailable } from "../helpers/services.js";
import { fundedSubscription } from "../helpers/test-app.js";

describe.skipIf(!postgresAvailable)("concurrent refunds of one debit on PostgreSQL", () => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createPostgresDatabase(24);
  });
  afterAll(() => database?.dispose());

  /** A settled 5-credit debit of a subscription that had 100 leads credits. */
  async function settledDebit(amount = 5): Promise<{ subscriptionId: string; entryId: string }> {
    const subscriptionId = await fundedSubscription(database, "owner", { leads: 100 });
    const debit = await holdOne(database.db, {
      subscriptionId,
      creditType: "leads",
      amount,
      operation: "Mutation.searchLeads",
      estimated: amount,
      actorId: "owner",
      adminOverride: false,
      requestId: "debit",
    });
    if (!debit.ok) throw new Error("debit failed");
    expect(await postHold(database.db, subscriptionId, debit.entryId)).toBe(true);
    return { subscriptionId, entryId: debit.entryId };
  }

  function refundInParallel(entryId: string, amounts: (number | undefined)[]) {
    return Promise.allSettled(
      amounts.map((amount, i) =>
        refundCharge(database.db, { entryId, amount, actorId: "admin", reason: `refund ${i}`, requestId: `refund-${i}` }),
      ),
    );
  }

  async function balance(subscriptionId: string): Promise<number> {
    const rows = await queryRows<{ balance: number }>(
      database.db,
      sql`select balance from credit_balances where subscription_id = ${subscriptionId}::uuid and credit_type = 'leads'`,
    );
    return Number(rows[0].balance);
  }

  async function refundedOf(subscriptionId: string, entryId: string): Promise<number> {
    const rows = await queryRows<{ sum: number | string }>(
      database.db,
      sql`select coalesce(sum(amount), 0) as sum from credit_ledger
           where subscription_id = ${subscriptionId}::uuid and refund_of = ${entryId}::uuid and kind = 'REFUND'`,
    );
    return Number(rows[0].sum);
  }

  function split(results: PromiseSettledResult<LedgerEntryRecord>[]) {
    const passed = results.filter((r): r is PromiseFulfilledResult<LedgerEntryRecord> => r.status === "fulfilled").map((r) => r.value);
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === "rejected").map((r) => r.reason as Error);
    return { passed, refused };
  }

  it("20 concurrent refunds of 1 credit of a 5-credit debit: exactly 5 pass", async () => {
    const { subscriptionId, entryId } = await settledDebit(5);
    const { passed, refused } = split(await refundInParallel(entryId, Array(20).fill(1)));

    expect(passed).toHaveLength(5);
    expect(refused).toHaveLength(15);
    for (const err of refused) {
      expect(err).toBeInstanceOf(BadUserInputError);
      expect(err.message).toMatch(new RegExp(`Debit ${entryId} has (only \\d+ credits|nothing) left to refund`));
    }
    expect(await refundedOf(subscriptionId, entryId)).toBe(5);
    expect(await balance(subscriptionId)).toBe(100);
    // Each passing refund saw the balance its predecessors left: balances after are 96..100, once each.
    expect(passed.map((e) => e.balanceAfter).sort((a, b) => a - b)).toEqual([96, 97, 98, 99, 100]);
    expect((await auditLedger(database.db)).ok).toBe(true);
  });

  it('two concurrent "refund the rest": one passes, the other is told nothing is left', async () => {
    const { subscriptionId, entryId } = await settledDebit(5);
    const { passed, refused } = split(await refundInParallel(entryId, [undefined, undefined]));

    expect(passed).toHaveLength(1);
    expect(passed[0]).toMatchObject({ kind: "REFUND", amount: 5, refundOf: entryId, actorId: "admin", balanceAfter: 100 });
    expect(refused).toHaveLength(1);
    expect(refused[0]).toBeInstanceOf(BadUserInputError);
    expect(refused[0].message).toMatch(/nothing left to refund/);
    expect(await refundedOf(subscriptionId, entryId)).toBe(5);
    expect(await balance(subscriptionId)).toBe(100);
  });

  it("refunds racing inside their own transactions (an Idempotency-Key's): the losers are told what is left, not a database failure", async () => {
    // A keyed refundCharge runs in the transaction that stores its key's answer. The loser's refusal
    // (the refund-limit trigger) aborts what ran in it, so saying "has only N left" needs a read the
    // aborted transaction could not answer (SQLSTATE 25P02, a 500 and a FAILED_TRANSACTION alert).
    const { subscriptionId, entryId } = await settledDebit(5);
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) =>
        database.db.transaction((tx) =>
          refundCharge(tx, { entryId, amount: undefined, actorId: "admin", reason: `keyed ${i}`, requestId: `keyed-${i}` }),
        ),
      ),
    );
    const { passed, refused } = split(results);

    expect(passed).toHaveLength(1);
    expect(refused).toHaveLength(7);
    for (const err of refused) {
      expect(err).toBeInstanceOf(BadUserInputError);
      expect(err.message).toMatch(/nothing left to refund/);
    }
    expect(await refundedOf(subscriptionId, entryId)).toBe(5);
    expect(await balance(subscriptionId)).toBe(100);
  });

  it("a mix of partial refunds and refunds of the rest never exceeds the debit", async () => {
    const { subscriptionId, entryId } = await settledDebit(9);
    const results = await refundInParallel(entryId, [3, 3, undefined, 2, 4, undefined, 1, 3, 2, undefined]);
    const { passed } = split(results);

    expect(passed.length).toBeGreaterThan(0);
    const total = passed.reduce((sum, e) => sum + e.amount, 0);
    expect(total).toBeLessThanOrEqual(9);
    expect(await refundedOf(subscriptionId, entryId)).toBe(total);
    expect(await balance(subscriptionId)).toBe(91 + total);
    expect((await auditLedger(database.db)).ok).toBe(true);
  });
});
