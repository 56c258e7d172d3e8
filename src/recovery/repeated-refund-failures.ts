/**
 * The holds whose recovery refund has already failed on an earlier pass of this process, by ledger
 * entry id. A refund that fails for good (a database restored wrongly, its hold's ledger row missing)
 * fails again on every pass, every RECOVERY_INTERVAL: the operator must hear of each stuck hold once
 * (FAILED_TRANSACTION, an error log), not every few seconds, so the recovery pass asks here whether a
 * failure is news. It lives as long as the recovery scheduler (one per createCredits), across passes.
 *
 * Bounded: past `capacity` holds the one that failed least recently is forgotten (it would alert
 * again on its next failure). A hold refunded or settled by another instance never reaches forget()
 * here, so it is exactly such entries, no longer failing, that age out first.
 */

/** The most holds remembered at once (an operator facing more stuck holds than this has bigger news). */
export const REPEATED_REFUND_FAILURES_CAPACITY = 10_000;

export interface RepeatedRefundFailures {
  /** Notes a failed refund of this hold; how many of its refunds have failed so far (1: the first, news). */
  failed(entryId: string): number;
  /** Its refund succeeded, or someone else settled it: a later failure would be news again. */
  forget(entryId: string): void;
  /** How many holds are remembered as failing. */
  readonly size: number;
}

export function createRepeatedRefundFailures(capacity = REPEATED_REFUND_FAILURES_CAPACITY): RepeatedRefundFailures {
  if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
  // A Map iterates in insertion order: re-inserting on each failure keeps its first key the least recent.
  const attempts = new Map<string, number>();
  return {
    failed(entryId) {
      const count = (attempts.get(entryId) ?? 0) + 1;
      attempts.delete(entryId);
      if (attempts.size >= capacity) attempts.delete(attempts.keys().next().value as string);
      attempts.set(entryId, count);
      return count;
    },
    forget(entryId) {
      attempts.delete(entryId);
    },
    get size() {
      return attempts.size;
    },
  };
}
