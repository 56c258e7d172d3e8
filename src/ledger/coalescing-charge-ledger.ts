/**
 * The charge ledger the server runs: holds coalesced into batch statements, settlements coalesced
 * into batch statements (DESIGN.md, "Performance").
 *
 * - Holds: concurrent operations' hold groups go to the database together, one `holdGroups`
 *   statement each batch. Groups that share a balance are never in two statements at once and keep
 *   their arrival order, so a hot subscription's queue becomes one statement that grants the
 *   operations that fit, in order, and refuses the rest one by one: its row is locked once per batch
 *   instead of once per request. A few statements run at once (`maxInFlight`) for other balances.
 * - Settlements: see settlement-batcher.ts; an operation's settlements are one item, so they share
 *   one statement.
 *
 * A lone request still goes to the database at once: batching only ever gathers what is waiting.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Database } from "../db/database.js";
import { sqlState } from "../db/errors.js";
import { LOST_CONNECTION_RETRY_DELAYS_MS } from "../db/retry-delays.js";
import type { ChargeLedger } from "./charge-ledger.js";
import { Coalescer } from "./coalescer.js";
import { holdGroups, type HoldGroup, type HoldOutcome } from "./hold.js";
import { createSettlementBatcher } from "./settlement-batcher.js";

export interface CoalescingChargeLedgerOptions {
  /** Most hold groups per statement (default 100). */
  maxBatch?: number;
  /** Pauses before each further attempt of a hold statement whose commit is unknown (default HOLD_RETRY_DELAYS_MS). */
  holdRetryDelaysMs?: readonly number[];
  /** Most hold statements running at once, and most settlement statements (default 2); each holds one pooled connection. */
  maxInFlight?: number;
  /** The lease every hold is recorded under (src/recovery/instance-lease.ts); none: holds carry no instance. */
  instanceId?: () => Promise<string>;
}

export interface CoalescingChargeLedger extends ChargeLedger {
  /** Resolves once every hold and settlement asked for so far is done. */
  idle(): Promise<void>;
}

export function createCoalescingChargeLedger(db: Database, options: CoalescingChargeLedgerOptions = {}): CoalescingChargeLedger {
  const holds = new Coalescer<HoldGroup, HoldOutcome[] | Failed>({
    maxBatch: options.maxBatch ?? 100,
    maxInFlight: options.maxInFlight ?? 2,
    keysOf: (group) => [...new Set(group.map((r) => `${r.subscriptionId}\u0000${r.creditType}`))],
    run: async (batch) => {
      // Asked per batch: a lost lease is replaced before the next hold is recorded under it.
      const instanceId = options.instanceId ? await options.instanceId() : null;
      return holdRecoveringUnknownCommits(db, batch, options.holdRetryDelaysMs ?? HOLD_RETRY_DELAYS_MS, instanceId);
    },
  });
  // Settlements are cheaper statements than holds; they get as many at once.
  const settlements = createSettlementBatcher(db, { maxInFlight: options.maxInFlight ?? 2 });

  return {
    async hold(group) {
      if (group.length === 0) return [];
      const outcome = await holds.submit(group);
      if ("failed" in outcome) throw outcome.failed;
      return outcome;
    },
    settle: (items) => settlements.settle(items),
    async idle() {
      await holds.idle();
      await settlements.idle();
    },
  };
}

interface Failed {
  failed: unknown;
}

/** A hold statement that lost its connection is looked up and retried after each of these pauses. */
export const HOLD_RETRY_DELAYS_MS: readonly number[] = LOST_CONNECTION_RETRY_DELAYS_MS;

/**
 * A hold statement whose connection died may or may not have committed. Its holds carry ids chosen
 * before it ran, so it is simply sent again, after a pause, marked as a retry: the statement looks
 * the ids up in the ledger once it holds the balance locks, answers the groups that committed the
 * first time from their entries, and holds only the others (DESIGN.md, "Retries and crashes"). One
 * statement per attempt, so an attempt on a fresh connection (a killed one is replaced) has as
 * little as possible to get through. A retry can never hold twice: the lookup runs after the locks
 * (a first attempt still running finishes first), and the ledger's key (subscription, entry id)
 * refuses a second insert of the same hold.
 */
async function holdRecoveringUnknownCommits(
  db: Database,
  batch: HoldGroup[],
  delaysMs: readonly number[],
  instanceId: string | null,
): Promise<(HoldOutcome[] | Failed)[]> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await holdIsolatingFailures(db, batch, instanceId, attempt > 0);
    } catch (err) {
      if (attempt >= delaysMs.length) throw err;
      await sleep(delaysMs[attempt]);
    }
  }
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
 * One batch statement; if the database refuses it, each group is tried alone, so one operation the
 * database cannot take (a text it rejects) fails by itself instead of failing everyone it was
 * batched with. Any other failure is not retried: the statement may have committed, and a retry
 * could hold twice.
 */
async function holdIsolatingFailures(
  db: Database,
  batch: HoldGroup[],
  instanceId: string | null,
  retry: boolean,
): Promise<(HoldOutcome[] | Failed)[]> {
  try {
    return await holdGroups(db, batch, instanceId, { retry });
  } catch (err) {
    if (batch.length === 1 || !refusedByTheStatement(err)) throw err;
    // One after another, in arrival order, as the batch would have granted them.
    const outcomes: (HoldOutcome[] | Failed)[] = [];
    for (const group of batch) {
      try {
        outcomes.push((await holdGroups(db, [group], instanceId, { retry }))[0]);
      } catch (failed) {
        outcomes.push({ failed });
      }
    }
    return outcomes;
  }
}
