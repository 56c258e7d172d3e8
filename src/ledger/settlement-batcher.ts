/**
 * Settles successful charges together: every settle that arrives while another settlement statement
 * runs joins the next one, a single `settleCharges` DELETE for all of them. A request still waits for
 * its own charge to be settled (so a charge is never reported done before it is), but the database
 * sees one statement per batch instead of one per request.
 */
import type { DbOrTx } from "../db/database.js";
import { Coalescer } from "./coalescer.js";
import { refundedEntries, settleCharges } from "./settle.js";

export interface SettlementBatcherOptions {
  /** Most charges per statement (default 500). */
  maxBatch?: number;
  /** Most settlement statements running at once (default 2). */
  maxInFlight?: number;
}

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
  const coalescer = new Coalescer<Settlement, boolean>({
    maxBatch: options.maxBatch ?? 500,
    maxInFlight: options.maxInFlight ?? 2,
    async run(batch) {
      let settled: Set<string>;
      try {
        settled = await settleCharges(db, batch);
      } catch {
        // A lost connection would leave every charge of the batch pending, and the recovery pass
        // would refund calls that succeeded. Deleting pending marks is idempotent, so try once more;
        // a mark already gone then is ours (the first attempt committed) unless recovery refunded it.
        settled = await settleCharges(db, batch);
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
