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
import type { Logger } from "pino";
import type { Database } from "../db/database.js";
import { sqlState } from "../db/errors.js";
import { LOST_CONNECTION_RETRY_DELAYS_MS } from "../db/retry-delays.js";
import { runLedgerCommand, type ChargeLedger } from "./charge-ledger.js";
import { Coalescer } from "./coalescer.js";
import { holdGroups, LEASE_EXPIRED_SQLSTATE, LeaseChangedError, type HoldGroup, type HoldOutcome } from "./hold.js";
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
  /** The database refused a hold statement because this lease has expired: the next `instanceId()` must take a new one. */
  leaseExpired?: (instanceId: string) => void;
  /** Where settlements written late (after a database outage), or given up, are logged. */
  logger?: Logger;
}

export interface CoalescingChargeLedger extends ChargeLedger {
  /** Resolves once every hold and settlement asked for so far is done. */
  idle(): Promise<void>;
  /**
   * Clean shutdown: refuses further holds (LedgerClosedError), waits for the holds and settlements
   * asked for so far, tries once more the settlements a database outage kept waiting in the
   * background, then stops trying those (what is still not written, the recovery pass refunds).
   * Settlements asked for after it are still written: they only ever end holds.
   */
  close(): Promise<void>;
}

/** A hold asked of a ledger that is closing (the server is stopping): nothing is held. */
export class LedgerClosedError extends Error {
  constructor() {
    super("the credits ledger is closed: the server is shutting down, nothing was held");
    this.name = "LedgerClosedError";
  }
}

export function createCoalescingChargeLedger(db: Database, options: CoalescingChargeLedgerOptions = {}): CoalescingChargeLedger {
  const holds = new Coalescer<HoldGroup, HoldOutcome[] | Failed>({
    maxBatch: options.maxBatch ?? 100,
    maxInFlight: options.maxInFlight ?? 2,
    keysOf: (group) => [...new Set(group.map((r) => `${r.subscriptionId}\u0000${r.creditType}`))],
    run: (batch) =>
      holdIsolatingFailures(
        { db, delaysMs: options.holdRetryDelaysMs ?? HOLD_RETRY_DELAYS_MS, currentInstanceId: options.instanceId, leaseExpired: options.leaseExpired },
        batch,
      ),
  });
  // Settlements are cheaper statements than holds; they get as many at once.
  const settlements = createSettlementBatcher(db, { maxInFlight: options.maxInFlight ?? 2, logger: options.logger });

  let closed = false;
  return {
    async hold(group) {
      if (group.length === 0) return [];
      if (closed) throw new LedgerClosedError();
      const outcome = await holds.submit(group);
      if ("failed" in outcome) throw outcome.failed;
      return outcome;
    },
    settle: (items, settleOptions) => settlements.settle(items, settleOptions),
    refund: (request) => runLedgerCommand(db, { kind: "refund", request }),
    async idle() {
      await holds.idle();
      await settlements.idle();
    },
    async close() {
      closed = true;
      await holds.idle();
      await settlements.idle();
      await settlements.flush();
      settlements.close();
    },
  };
}

interface Failed {
  failed: unknown;
}

/** A hold statement that lost its connection is looked up and retried after each of these pauses. */
export const HOLD_RETRY_DELAYS_MS: readonly number[] = LOST_CONNECTION_RETRY_DELAYS_MS;

/** Where a batch's hold statements go, and how a lost connection is retried. */
interface HoldTarget {
  db: Database;
  delaysMs: readonly number[];
  currentInstanceId: (() => Promise<string>) | undefined;
  leaseExpired: ((instanceId: string) => void) | undefined;
}

/**
 * One batch statement; if the database refuses it, each group is tried alone, so one operation the
 * database cannot take (a text it rejects) fails by itself instead of failing everyone it was
 * batched with. Each of these statements, the batch's and the single groups', survives a lost
 * connection (holdRecoveringUnknownCommits).
 */
async function holdIsolatingFailures(target: HoldTarget, batch: HoldGroup[]): Promise<(HoldOutcome[] | Failed)[]> {
  let sentBefore = false;
  try {
    return await holdRecoveringUnknownCommits(target, batch, () => (sentBefore = true));
  } catch (err) {
    if (batch.length === 1 || !refusedByTheStatement(err)) throw err;
    // One after another, in arrival order, as the batch would have granted them. If an earlier
    // attempt of the batch lost its answer, it may have committed: the groups are sent as retries.
    const outcomes: (HoldOutcome[] | Failed)[] = [];
    for (const group of batch) {
      try {
        outcomes.push((await holdRecoveringUnknownCommits(target, [group], () => undefined, sentBefore))[0]);
      } catch (failed) {
        outcomes.push({ failed });
      }
    }
    return outcomes;
  }
}

/**
 * A hold statement whose connection died may or may not have committed. Its holds carry ids chosen
 * before it ran, so it is simply sent again, after a pause, marked as a retry: the statement looks
 * the ids up in the ledger once it holds the balance locks, answers the groups that committed the
 * first time from their entries, and holds only the others (DESIGN.md, "Retries and crashes"). One
 * statement per attempt, so an attempt on a fresh connection (a killed one is replaced) has as
 * little as possible to get through. A retry can never hold twice: the lookup runs after the locks
 * (a first attempt still running finishes first), and the ledger's key (subscription, entry id)
 * refuses a second insert of the same hold. A statement the database refused for what it holds
 * (bad data, a constraint, an exception) is not retried here: it would be refused again. One rolled
 * back by a deadlock or a serialization failure is, and so is one refused because the instance's
 * lease had expired (nothing was held): at once, under a new lease.
 */
async function holdRecoveringUnknownCommits(
  target: HoldTarget,
  groups: HoldGroup[],
  onAnswerLost: () => void,
  sentBefore = false,
): Promise<(HoldOutcome[] | Failed)[]> {
  for (let attempt = 0; ; attempt++) {
    // Asked on every attempt, and retried like the statement: the lease is renewed on the same
    // database, through the same outages, as the hold, so a renewal that lost its connection must
    // not fail a whole batch; and a lease lost meanwhile is replaced before a hold is recorded under it.
    let instanceId: string | null = null;
    try {
      instanceId = target.currentInstanceId ? await target.currentInstanceId() : null;
      return await holdUnderLease(target.db, groups, instanceId, { retry: sentBefore || attempt > 0 });
    } catch (err) {
      if (attempt >= target.delaysMs.length) throw err;
      if (instanceId !== null && sqlState(err) === LEASE_EXPIRED_SQLSTATE) {
        target.leaseExpired?.(instanceId);
        continue;
      }
      if (refusedForItsContent(err)) throw err;
      onAnswerLost();
      await sleep(target.delaysMs[attempt]);
    }
  }
}

/** One hold statement for the groups this lease may hold; a group bound to another lease fails by itself. */
async function holdUnderLease(
  db: Database,
  groups: HoldGroup[],
  instanceId: string | null,
  options: { retry: boolean },
): Promise<(HoldOutcome[] | Failed)[]> {
  const boundElsewhere = groups.map((group) => group.some((r) => r.requiredLease !== undefined && r.requiredLease !== instanceId));
  const sendable = groups.filter((_, i) => !boundElsewhere[i]);
  const outcomes = sendable.length > 0 ? await holdGroups(db, sendable, instanceId, options) : [];
  let next = 0;
  return groups.map((_, i) => (boundElsewhere[i] ? { failed: new LeaseChangedError() } : outcomes[next++]));
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

/** Refused, and would be refused again: all of the above but a rolled-back transaction (40). */
function refusedForItsContent(err: unknown): boolean {
  return refusedByTheStatement(err) && sqlState(err)?.slice(0, 2) !== "40";
}
