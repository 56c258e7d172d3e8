/**
 * Settles successful charges together: every settle that arrives while another settlement statement
 * runs joins the next one, a single `settleCharges` DELETE for all of them. A request still waits for
 * its own charge to be settled (so a charge is never reported done before it is), but the database
 * sees one statement per batch instead of one per request.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "pino";
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
  /** Pauses before each attempt in the background once those have failed too (default SETTLE_LATER_DELAYS_MS). */
  laterDelaysMs?: readonly number[];
  /** Where settling late, or giving up, is logged. */
  logger?: Logger;
}

/**
 * A settlement statement that fails (a lost connection, a restarting database) is tried again after
 * each of these pauses. A failed settle leaves its charges pending and the recovery pass refunds
 * them after CHARGE_SETTLE_TIMEOUT, making calls that succeeded free; with one retry, 8 of 219
 * successful calls of the kill storm (every backend terminated every 50 ms) still ended up free.
 * Fresh connections a little later almost always get through.
 */
export const SETTLE_RETRY_DELAYS_MS: readonly number[] = LOST_CONNECTION_RETRY_DELAYS_MS;

/**
 * A settlement statement that still fails after every retry (the database away for more than a few
 * seconds) is tried again in the background after each of these pauses, about 25 minutes in all.
 * The request has answered by then, reporting the hold as the cost. Without this, the holds stayed
 * pending until CHARGE_SETTLE_TIMEOUT (an hour by default), showed as held all that time, and were
 * then refunded whole: calls that succeeded, and whose results were delivered, ended up free.
 * Settling late is safe: a hold is settled only while its pending mark exists, so if the recovery
 * pass refunded it first (the instance died, or the timeout passed), the late statement does nothing.
 */
export const SETTLE_LATER_DELAYS_MS: readonly number[] = [5_000, 10_000, 30_000, 60_000, 120_000, 300_000, 300_000, 300_000, 300_000, 300_000];

export interface SettlementBatcher {
  /**
   * Settles one operation's holds (in one statement, with whatever other operations' settlements
   * are waiting). One outcome per settlement; `settled: false` when something else (the recovery
   * pass) settled that hold first.
   */
  settle(settlements: readonly Settlement[]): Promise<SettlementOutcome[]>;
  /** Resolves once every settle asked for so far is done (background attempts excepted). */
  idle(): Promise<void>;
  /** Settlements waiting in the background for the database to come back (for tests). */
  readonly waitingToSettle: number;
  /**
   * At shutdown, before close(): tries every settlement waiting in the background once more, now,
   * and waits for the attempts under way. What still fails stays waiting (close() gives it up).
   */
  flush(): Promise<void>;
  /** Stops the background attempts: what they had not settled, the recovery pass refunds. */
  close(): void;
}

export function createSettlementBatcher(db: DbOrTx, options: SettlementBatcherOptions = {}): SettlementBatcher {
  const retryDelaysMs = options.retryDelaysMs ?? SETTLE_RETRY_DELAYS_MS;
  const later = new LateSettlements(db, options.laterDelaysMs ?? SETTLE_LATER_DELAYS_MS, options.logger);
  const coalescer = new Coalescer<readonly Settlement[], SettlementOutcome[]>({
    maxBatch: options.maxBatch ?? 500,
    maxInFlight: options.maxInFlight ?? 2,
    async run(operations) {
      const batch = operations.flat();
      let outcomes: SettlementOutcome[];
      try {
        outcomes = await settleWithRetries(db, batch, retryDelaysMs);
      } catch (err) {
        later.add(batch);
        throw err;
      }
      let next = 0;
      return operations.map((operation) => outcomes.slice(next, (next += operation.length)));
    },
  });
  return {
    settle: (settlements) => (settlements.length === 0 ? Promise.resolve([]) : coalescer.submit(settlements)),
    idle: () => coalescer.idle(),
    get waitingToSettle() {
      return later.size;
    },
    flush: () => later.flush(),
    close: () => later.close(),
  };
}

/** Most settlements kept for a later attempt; beyond it they are left to the recovery pass (bounded memory in a long outage). */
const MAX_WAITING_TO_SETTLE = 100_000;

/** Settlement statements that failed every retry, tried again in the background (SETTLE_LATER_DELAYS_MS). */
class LateSettlements {
  /** The batches waiting for their next attempt, by the timer of that attempt. */
  private readonly timers = new Map<NodeJS.Timeout, { batch: readonly Settlement[]; attempt: number }>();
  /** Attempts under way. */
  private readonly running = new Set<Promise<void>>();
  private waiting = 0;
  private closed = false;

  constructor(
    private readonly db: DbOrTx,
    private readonly delaysMs: readonly number[],
    private readonly logger: Logger | undefined,
  ) {}

  get size(): number {
    return this.waiting;
  }

  add(batch: readonly Settlement[]): void {
    if (this.closed || this.waiting + batch.length > MAX_WAITING_TO_SETTLE) {
      this.logger?.error({ event: "charge.settle_abandoned", holds: batch.length }, "settlements not kept for a later attempt; the recovery pass refunds these holds");
      return;
    }
    this.waiting += batch.length;
    this.attemptAfter(batch, 0);
  }

  async flush(): Promise<void> {
    const waiting = [...this.timers];
    for (const [timer] of waiting) clearTimeout(timer);
    this.timers.clear();
    for (const [, { batch, attempt }] of waiting) this.run(batch, attempt);
    await Promise.all(this.running);
  }

  close(): void {
    this.closed = true;
    for (const timer of this.timers.keys()) clearTimeout(timer);
    this.timers.clear();
    if (this.waiting > 0) {
      this.logger?.warn({ event: "charge.settle_abandoned", holds: this.waiting }, "stopping with settlements not written; the recovery pass refunds these holds");
    }
    this.waiting = 0;
  }

  private attemptAfter(batch: readonly Settlement[], attempt: number): void {
    const delay = this.delaysMs[attempt];
    if (delay === undefined || this.closed) {
      this.done(batch);
      this.logger?.error({ event: "charge.settle_abandoned", holds: batch.length, attempts: attempt }, "settlements never written; the recovery pass refunds these holds");
      return;
    }
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.run(batch, attempt);
    }, delay);
    timer.unref();
    this.timers.set(timer, { batch, attempt });
  }

  /** Runs one attempt (tracked, for flush()); a failed one waits for the next, unless closed. */
  private run(batch: readonly Settlement[], attempt: number): void {
    const running: Promise<void> = this.attempt(batch, attempt)
      .catch(() => {
        if (!this.closed) this.attemptAfter(batch, attempt + 1);
      })
      .finally(() => this.running.delete(running));
    this.running.add(running);
  }

  /** One late attempt; rejects when the database still does not answer. */
  private async attempt(batch: readonly Settlement[], attempt: number): Promise<void> {
    const outcomes = await settleHolds(this.db, batch);
    // Not settled now: an earlier attempt committed unseen (ours), or the recovery pass refunded
    // the hold first (the outage outlasted this instance's lease). Only the ledger tells which.
    const notSettled = batch.filter((settlement, i) => settlement.kind !== "void" && !outcomes[i].settled);
    const refunded = notSettled.length > 0 ? await refundedEntries(this.db, notSettled) : new Set<string>();
    this.done(batch);
    const refundedFirst = notSettled.filter((settlement) => refunded.has(settlement.entryId));
    this.logger?.info(
      { event: "charge.settled_late", holds: batch.length, refundedFirst: refundedFirst.length, attempts: attempt + 1 },
      "settled holds after the database came back",
    );
    if (refundedFirst.length > 0) {
      // Calls that succeeded run for free, as a late success after a recovery refund does.
      this.logger?.error(
        { event: "credits.late_settlement", entryIds: refundedFirst.map((s) => s.entryId), requestIds: [...new Set(refundedFirst.map((s) => s.requestId))] },
        "the recovery pass refunded these holds before their late settlement: the calls are not charged",
      );
    }
  }

  private done(batch: readonly Settlement[]): void {
    this.waiting = Math.max(0, this.waiting - batch.length);
  }
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
