/**
 * Settles successful charges together: every settle that arrives while another settlement statement
 * runs joins the next one, a single `settleCharges` DELETE for all of them. A request still waits for
 * its own charge to be settled (so a charge is never reported done before it is), but the database
 * sees one statement per batch instead of one per request.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { DbOrTx } from "../db/database.js";
import { Coalescer } from "./coalescer.js";
import { refundedEntries, settleCharges } from "./settle.js";

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
 * each of these pauses, about a second in all. A failed settle leaves its charges pending and the
 * recovery pass refunds them after CHARGE_SETTLE_TIMEOUT, making calls that succeeded free; with one
 * retry, 8 of 219 successful calls of the kill storm (every backend terminated every 50 ms) still
 * ended up free. Fresh connections a little later almost always get through.
 */
export const SETTLE_RETRY_DELAYS_MS: readonly number[] = [25, 100, 400, 800];

export interface SettlementBatcher {
  /** True when the charge was still pending and is now settled; false when something else (recovery) settled it first. */
  settle(subscriptionId: string, entryId: string): Promise<boolean>;
  /** Resolves once every settle asked for so far is done. */
  idle(): Promise<void>;
}

interface Settlement {
  subscriptionId: string;
  entryId: string;
}

export function createSettlementBatcher(db: DbOrTx, options: SettlementBatcherOptions = {}): SettlementBatcher {
  const retryDelaysMs = options.retryDelaysMs ?? SETTLE_RETRY_DELAYS_MS;
  const coalescer = new Coalescer<Settlement, boolean>({
    maxBatch: options.maxBatch ?? 500,
    maxInFlight: options.maxInFlight ?? 2,
    async run(batch) {
      let settled: Set<string> | undefined;
      let failures = 0;
      while (!settled) {
        try {
          settled = await settleCharges(db, batch);
        } catch (err) {
          // Still failing after every pause: the charges stay pending and the caller reports it.
          if (failures >= retryDelaysMs.length) throw err;
          await sleep(retryDelaysMs[failures++]);
        }
      }
      if (failures > 0) {
        // Deleting pending marks is idempotent, so retrying is safe; but a failed attempt may have
        // committed before its answer was lost. A mark already gone is then ours unless the
        // recovery pass refunded it.
        const missing = batch.filter((s) => !settled.has(s.entryId));
        if (missing.length > 0) {
          const refunded = await refundedEntries(db, missing);
          for (const s of missing) if (!refunded.has(s.entryId)) settled.add(s.entryId);
        }
      }
      return batch.map((s) => settled.has(s.entryId));
    },
  });
  return {
    settle: (subscriptionId, entryId) => coalescer.submit({ subscriptionId, entryId }),
    idle: () => coalescer.idle(),
  };
}
