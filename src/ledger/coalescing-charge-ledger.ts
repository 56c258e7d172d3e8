/**
 * The charge ledger the server runs: debits coalesced into batch statements, settlements coalesced
 * into batch deletes, and the subscription check folded into the debit (DESIGN.md, "Performance").
 *
 * - Debits: concurrent debits go to the database together, one `debitBatch` statement each batch.
 *   Debits of one (subscription, credit type) are never in two statements at once and keep their
 *   arrival order, so a hot subscription's queue becomes one statement that grants the requests that
 *   fit, in order, and refuses the rest one by one: its row is locked once per batch instead of once
 *   per request. A few statements run at once (`maxInFlight`) for other subscriptions.
 * - Settlements: see settlement-batcher.ts.
 * - Refunds: rare (a system error), one statement each, as before.
 *
 * A lone request still goes to the database at once: batching only ever gathers what is waiting.
 */
import { randomUUID } from "node:crypto";
import type { Database } from "../db/database.js";
import { sqlState } from "../db/errors.js";
import { debitBatch, type BatchDebitOutcome, type BatchDebitRequest } from "./batch-debit.js";
import type { AuthorizedDebitOutcome, AuthorizedDebitRequest, ChargeLedger } from "./charge-ledger.js";
import { Coalescer } from "./coalescer.js";
import type { DebitOutcome, DebitRequest } from "./debit.js";
import { createSettlementBatcher } from "./settlement-batcher.js";
import { refundPendingCharge } from "./settle.js";

export interface CoalescingChargeLedgerOptions {
  /** Most debits per statement (default 100). */
  maxBatch?: number;
  /** Most debit statements running at once, and most settlement statements (default 2); each holds one pooled connection. */
  maxInFlight?: number;
}

export interface CoalescingChargeLedger extends ChargeLedger {
  authorizeAndDebit(request: AuthorizedDebitRequest): Promise<AuthorizedDebitOutcome>;
  /** Resolves once every debit and settlement asked for so far is done. */
  idle(): Promise<void>;
}

export function createCoalescingChargeLedger(db: Database, options: CoalescingChargeLedgerOptions = {}): CoalescingChargeLedger {
  const debits = new Coalescer<BatchDebitRequest, BatchDebitOutcome | Failed>({
    maxBatch: options.maxBatch ?? 100,
    maxInFlight: options.maxInFlight ?? 2,
    keyOf: (r) => `${r.subscriptionId}\u0000${r.creditType}`,
    run: (batch) => debitIsolatingFailures(db, batch),
  });
  const submit = async (request: BatchDebitRequest): Promise<BatchDebitOutcome> => {
    const outcome = await debits.submit(request);
    if ("failed" in outcome) throw outcome.failed;
    return outcome;
  };
  // Settlements are cheaper statements than debits; they get as many at once.
  const settlements = createSettlementBatcher(db, { maxInFlight: options.maxInFlight ?? 2 });

  return {
    async debit(request: DebitRequest): Promise<DebitOutcome> {
      // The caller has authorized already: nothing to check again, so "unauthorized" cannot come back.
      const outcome = await submit({ ...request, entryId: randomUUID(), authorize: false, actorIsAdmin: false });
      if (outcome.ok === false && outcome.reason === "unauthorized") throw new Error("unexpected authorization refusal");
      return outcome;
    },
    authorizeAndDebit: (request) => submit({ ...request, entryId: randomUUID(), authorize: true }),
    settle: (subscriptionId, entryId) => settlements.settle(subscriptionId, entryId),
    refund: (request) => refundPendingCharge(db, request),
    async idle() {
      await debits.idle();
      await settlements.idle();
    },
  };
}

interface Failed {
  failed: unknown;
}

/**
 * Errors that mean the statement itself was refused and rolled back: bad data (22), a violated
 * constraint (23), a rolled-back transaction such as a deadlock (40), a trigger's exception (P0).
 * Anything else (a lost or terminated connection, 08/57) may have come after the commit.
 */
function refusedByTheStatement(err: unknown): boolean {
  const state = sqlState(err);
  return state !== undefined && ["22", "23", "40", "P0"].includes(state.slice(0, 2));
}

/**
 * One batch statement; if the database refuses it, each request is tried alone, so one request the
 * database cannot take (a text it rejects) fails by itself instead of failing everyone it was
 * batched with. Any other failure is not retried: the statement may have committed, and a retry
 * could debit twice.
 */
async function debitIsolatingFailures(db: Database, batch: BatchDebitRequest[]): Promise<(BatchDebitOutcome | Failed)[]> {
  try {
    return await debitBatch(db, batch);
  } catch (err) {
    if (batch.length === 1 || !refusedByTheStatement(err)) throw err;
    // One after another, in arrival order, as the batch would have granted them.
    const outcomes: (BatchDebitOutcome | Failed)[] = [];
    for (const request of batch) {
      try {
        outcomes.push((await debitBatch(db, [request]))[0]);
      } catch (failed) {
        outcomes.push({ failed });
      }
    }
    return outcomes;
  }
}
