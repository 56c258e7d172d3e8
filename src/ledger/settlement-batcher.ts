/**
 * Settles successful charges together: every settle that arrives while another settlement statement
 * runs joins the next one, a single `settleCharges` DELETE for all of them. A request still waits for
 * its own charge to be settled (so a charge is never reported done before it is), but the database
 * sees one statement per batch instead of one per request.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { DbOrTx } from "../db/database.js";
import { LOST_CONNECTION_RETRY_DELAYS_MS } from "../db/retry-delays.js";
import { Coalescer } from "./coalescer.js";
import { refundedEntries, settleHolds, type Settlement, type SettlementOutcome } from "./settle.js";

export interface SettlementBatcherOptions {
  /** Most charges per statement (default 500). */
  maxBatch?: number;
  /** Most settlement statements running at once (default 2). */
  maxInFlight?: number;
  /** Pauses before each further attempt of a statement that failed (default SETTLE_RETRY_DELAYS_MS). */
  retryDelaysMs?: readonly number[];
}

/**
 * A settlement statement that fails (a lost connection, a restarting database) is tried again after
 * each of these pauses. A failed settle leaves its charges pending and the recovery pass refunds
 * them after CHARGE_SETTLE_TIMEOUT, making calls that succeeded free; with one retry, 8 of 219
 * successful calls of the kill storm (every backend terminated every 50 ms) still ended up free.
 * Fresh connections a little later almost always get through.
 */
export const SETTLE_RETRY_DELAYS_MS: readonly number[] = LOST_CONNECTION_RETRY_DELAYS_MS;

export interface SettlementBatcher {
  /**
   * Settles one operation's holds (in one statement, with whatever other operations' settlements
   * are waiting). One outcome per settlement; `settled: false` when something else (the recovery
   * pass) settled that hold first.
   */
  settle(settlements: readonly Settlement[]): Promise<SettlementOutcome[]>;
  /** Resolves once every settle asked for so far is done. */
  idle(): Promise<void>;
}

export function createSettlementBatcher(db: DbOrTx, options: SettlementBatcherOptions = {}): SettlementBatcher {
  const retryDelaysMs = options.retryDelaysMs ?? SETTLE_RETRY_DELAYS_MS;
  const coalescer = new Coalescer<readonly Settlement[], SettlementOutcome[]>({
    maxBatch: options.maxBatch ?? 500,
    maxInFlight: options.maxInFlight ?? 2,
    async run(operations) {
      const batch = operations.flat();
      const outcomes = await settleWithRetries(db, batch, retryDelaysMs);
      let next = 0;
      return operations.map((operation) => outcomes.slice(next, (next += operation.length)));
    },
  });
  return {
    settle: (settlements) => (settlements.length === 0 ? Promise.resolve([]) : coalescer.submit(settlements)),
    idle: () => coalescer.idle(),
  };
}

/**
 * One settlement statement, tried again after each pause when it fails. Retrying is safe: a hold
 * is settled only while its pending mark exists, and the mark goes in the same statement. But a
 * failed attempt may have committed before its answer was lost; a hold the retry then finds settled
 * is ours, unless the recovery pass refunded it in between (a REFUND entry for a hold we posted).
 */
async function settleWithRetries(db: DbOrTx, batch: Settlement[], retryDelaysMs: readonly number[]): Promise<SettlementOutcome[]> {
  let failures = 0;
  for (;;) {
    try {
      const outcomes = await settleHolds(db, batch);
      if (failures === 0) return outcomes;
      const missing = batch.filter((_, i) => !outcomes[i].settled);
      const refunded = await refundedEntries(db, missing);
      return outcomes.map((outcome, i) => {
        if (outcome.settled) return outcome;
        const settlement = batch[i];
        const ours = settlement.kind === "void" || !refunded.has(settlement.entryId);
        return ours ? { settled: true } : outcome;
      });
    } catch (err) {
      // Still failing after every pause: the holds stay pending and the caller reports it.
      if (failures >= retryDelaysMs.length) throw err;
      await sleep(retryDelaysMs[failures++]);
    }
  }
}
