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
import type { SettleOptions } from "./charge-ledger.js";
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
  /** Where settling late, giving up, or a `whenSettledLate` that threw, is logged. */
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
   * pass) settled that hold first. When it rejects, the holds are tried again in the background,
   * and `options.whenSettledLate` hears this operation's outcomes once they are written.
   */
  settle(settlements: readonly Settlement[], options?: SettleOptions): Promise<SettlementOutcome[]>;
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
  const coalescer = new Coalescer<OperationSettlements, SettlementOutcome[]>({
    maxBatch: options.maxBatch ?? 500,
    maxInFlight: options.maxInFlight ?? 2,
    async run(operations) {
      const batch = settlementsOf(operations);
      let outcomes: SettlementOutcome[];
      try {
        outcomes = await settleWithRetries(db, batch, retryDelaysMs);
      } catch (err) {
        later.add(operations);
        throw err;
      }
      return byOperation(operations, outcomes);
    },
  });
  return {
    settle: (settlements, settleOptions) =>
      settlements.length === 0 ? Promise.resolve([]) : coalescer.submit({ settlements, whenSettledLate: settleOptions?.whenSettledLate }),
    idle: () => coalescer.idle(),
    get waitingToSettle() {
      return later.size;
    },
    flush: () => later.flush(),
    close: () => later.close(),
  };
}

/** One operation's settlements, with whom to tell if they are written late. */
interface OperationSettlements extends SettleOptions {
  settlements: readonly Settlement[];
}

function settlementsOf(operations: readonly OperationSettlements[]): Settlement[] {
  return operations.flatMap((operation) => operation.settlements);
}

/** A batch's outcomes split back into each operation's, in order. */
function byOperation(operations: readonly OperationSettlements[], outcomes: SettlementOutcome[]): SettlementOutcome[][] {
  let next = 0;
  return operations.map((operation) => outcomes.slice(next, (next += operation.settlements.length)));
}

/** Most settlements kept for a later attempt; beyond it they are left to the recovery pass (bounded memory in a long outage). */
const MAX_WAITING_TO_SETTLE = 100_000;

/**
 * Settlement statements that failed every retry, tried again in the background (SETTLE_LATER_DELAYS_MS).
 * A batch keeps its operations apart: once written, each operation's outcomes go to its own
 * `whenSettledLate`, so each call is logged and counted as a settlement on time is.
 */
class LateSettlements {
  /** The batches waiting for their next attempt, by the timer of that attempt. */
  private readonly timers = new Map<NodeJS.Timeout, { batch: readonly OperationSettlements[]; attempt: number }>();
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

  add(batch: readonly OperationSettlements[]): void {
    const holds = settlementsOf(batch).length;
    if (this.closed || this.waiting + holds > MAX_WAITING_TO_SETTLE) {
      this.logger?.error({ event: "charge.settle_abandoned", holds }, "settlements not kept for a later attempt; the recovery pass refunds these holds");
      return;
    }
    this.waiting += holds;
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

  private attemptAfter(batch: readonly OperationSettlements[], attempt: number): void {
    const delay = this.delaysMs[attempt];
    if (delay === undefined || this.closed) {
      this.done(batch);
      this.logger?.error({ event: "charge.settle_abandoned", holds: settlementsOf(batch).length, attempts: attempt }, "settlements never written; the recovery pass refunds these holds");
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
  private run(batch: readonly OperationSettlements[], attempt: number): void {
    const running: Promise<void> = this.attempt(batch, attempt)
      .catch(() => {
        if (!this.closed) this.attemptAfter(batch, attempt + 1);
      })
      .finally(() => this.running.delete(running));
    this.running.add(running);
  }

  /** One late attempt; rejects when the database still does not answer. */
  private async attempt(batch: readonly OperationSettlements[], attempt: number): Promise<void> {
    const settlements = settlementsOf(batch);
    const written = await settleHolds(this.db, settlements);
    // Not settled now: an earlier attempt committed unseen (ours), or the recovery pass refunded
    // the hold first (the outage outlasted this instance's lease). Only the ledger tells which; a
    // void ends refunded either way, and counts as ours (as settleWithRetries counts it).
    const notSettled = settlements.filter((settlement, i) => settlement.kind !== "void" && !written[i].settled);
    const refunded = notSettled.length > 0 ? await refundedEntries(this.db, notSettled) : new Set<string>();
    this.done(batch);
    const outcomes = written.map((outcome, i): SettlementOutcome => (outcome.settled || refunded.has(settlements[i].entryId) ? outcome : { settled: true }));
    this.logger?.info(
      { event: "charge.settled_late", holds: settlements.length, refundedFirst: outcomes.filter((o) => !o.settled).length, attempts: attempt + 1 },
      "settled holds after the database came back",
    );
    // Each call is reported by its own operation (one log line and its metrics per settlement, and
    // a call the recovery pass refunded first as a late settlement), never by this batch.
    byOperation(batch, outcomes).forEach((own, i) => this.tell(batch[i], own));
  }

  /** Hands an operation its late outcomes; a callback that throws is logged, and the batch goes on. */
  private tell(operation: OperationSettlements, outcomes: SettlementOutcome[]): void {
    try {
      operation.whenSettledLate?.(outcomes);
    } catch (err) {
      this.logger?.error(
        { event: "charge.settled_late_report_failed", err, entryIds: operation.settlements.map((s) => s.entryId) },
        "a settlement written late could not be reported",
      );
    }
  }

  private done(batch: readonly OperationSettlements[]): void {
    this.waiting = Math.max(0, this.waiting - settlementsOf(batch).length);
  }
}

/**
 * One settlement statement, tried again after each pause when it fails. Retrying is safe: a hold
 * is settled only while its pending mark exists, and the mark goes in the same statement. But a
 * failed attempt may have committed before its answer was lost; a hold the retry then finds settled
 * is ours, unless the recovery pass refunded it in between (a REFUND entry for a hold we posted).
 *
 * On a first attempt, a post or release whose mark is gone with neither a REFUND nor a RELEASE of
 * it was not settled by anyone but a post: its mark was deleted by hand (an outside audit: the call
 * then reported a refund that was never written, cost 0, while the whole hold stayed charged). It is
 * told apart (`markMissing`): the hold stands as the cost.
 */
async function settleWithRetries(db: DbOrTx, batch: Settlement[], retryDelaysMs: readonly number[]): Promise<SettlementOutcome[]> {
  let failures = 0;
  for (;;) {
    try {
      const outcomes = await settleHolds(db, batch);
      // The usual case asks nothing more of the database.
      if (outcomes.every((outcome) => outcome.settled)) return outcomes;
      const missing = batch.filter((_, i) => !outcomes[i].settled);
      if (failures > 0) {
        const refunded = await refundedEntries(db, missing);
        return outcomes.map((outcome, i) => {
          if (outcome.settled) return outcome;
          const settlement = batch[i];
          const ours = settlement.kind === "void" || !refunded.has(settlement.entryId);
          return ours ? { settled: true } : outcome;
        });
      }
      const returned = await refundedEntries(db, missing, ["REFUND", "RELEASE"]);
      return outcomes.map((outcome, i): SettlementOutcome => {
        const settlement = batch[i];
        const markMissing = !outcome.settled && settlement.kind !== "void" && !returned.has(settlement.entryId);
        return markMissing ? { settled: false, markMissing: true } : outcome;
      });
    } catch (err) {
      // Still failing after every pause: the holds stay pending and the caller reports it.
      if (failures >= retryDelaysMs.length) throw err;
      await sleep(retryDelaysMs[failures++]);
    }
  }
}
