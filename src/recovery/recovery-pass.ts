/**
 * The recovery pass: every debit ends settled. A debit whose process died before it settled (crash,
 * SIGKILL, lost connection during the settle or the refund) keeps its pending_charges row. This pass
 * refunds it whole as soon as the lease of the instance that holds it has expired (or its row is
 * gone), whatever its age (instance-lease.ts); a hold on a live instance is refunded only once it is
 * older than CHARGE_SETTLE_TIMEOUT, the longest a call may run, and that refund raises an alert
 * (FAILED_TRANSACTION, through observer.refunded's reason). Holds recorded without an instance (tools,
 * tests) are judged by CHARGE_SETTLE_TIMEOUT alone. The pass also purges expired idempotency keys
 * and long-dead leases.
 *
 * Every age here is measured by the database's clock: holds and leases are stamped by it, so an
 * instance whose clock is ahead (even by a short NTP step) must not find a call still running on
 * another instance overdue, nor every key expired. Only a test's injected clock replaces it.
 *
 * Any number of instances may run it at once: each refund is one statement that deletes the pending
 * row while it gives the credits back (refundPendingCharge), so of two instances refunding the same
 * charge exactly one writes the REFUND, and the other finds nothing left to do. A charge that
 * succeeds after it was refunded here is reported by the charge wrapper (observer.lateSettlement)
 * and is never charged again.
 *
 * A server that stops cleanly runs one last pass itself, after ending its own lease
 * (createCredits' close()): the holds of its calls still running then are refunded before it exits,
 * with RECOVERY_SHUTDOWN_REASON, instead of staying pending until another instance's pass.
 *
 * A refund that fails is reported (observer.transactionFailed: FAILED_TRANSACTION, an error log) the
 * first time only; when the same hold fails again on a later pass of this process it is logged at
 * warn (recovery.refund_still_failing), so a hold stuck for good is not an alert every
 * RECOVERY_INTERVAL (repeated-refund-failures.ts).
 *
 * A refund waits at most RECOVERY_LOCK_TIMEOUT_MS for its balance row's lock (lock-timeout.ts): a row
 * locked by a long transaction elsewhere (a psql session left open) made the pass wait as long as
 * that transaction lasted (42 s in an outside audit), with the other customers' holds, grant expiry
 * and plan renewals waiting behind it, and nothing logged. Such a refund now fails with
 * lock_not_available: it is reported as a failure that names the lock, its hold stays pending for the
 * next pass, and the balance's other holds are passed over for the rest of this pass instead of
 * each waiting out the same lock.
 */
import { sql, type SQL } from "drizzle-orm";
import type { Logger } from "pino";
import { queryRows, type Database } from "../db/database.js";
import { LOCK_NOT_AVAILABLE, lockTimedOut, MAINTENANCE_LOCK_TIMEOUT_MS, writeWithLockTimeout } from "../db/lock-timeout.js";
import type { ChargeFacts, ChargeObserver } from "../credits/charge-observer.js";
import { runLedgerCommand } from "../ledger/charge-ledger.js";
import { purgeExpiredKeys } from "../idempotency/idempotency-store.js";
import { createRepeatedRefundFailures, type RepeatedRefundFailures } from "./repeated-refund-failures.js";

export const RECOVERY_REFUND_REASON = "recovery: unsettled charge";
/** The reason of a refund, by a server's last pass as it stops cleanly, of a hold of one of its own calls still running. */
export const RECOVERY_SHUTDOWN_REASON = "recovery: the call was still running when its server stopped";
/** The reason of a refund of a hold still open on a live instance after CHARGE_SETTLE_TIMEOUT. */
export const RECOVERY_OVERDUE_REASON = "recovery: open longer than CHARGE_SETTLE_TIMEOUT";
/** Expired leases are deleted this long after they expired (a hold whose lease row is gone is refunded all the same). */
const LEASE_RETENTION = "1 day";
/** The longest a refund waits for a row lock before it is left for the next pass (lock-timeout.ts says why 3 s). */
export const RECOVERY_LOCK_TIMEOUT_MS = MAINTENANCE_LOCK_TIMEOUT_MS;

export interface RecoveryPassOptions {
  db: Database;
  /** Pending charges older than this are refunded even on a live instance (CHARGE_SETTLE_TIMEOUT). */
  settleTimeoutMs: number;
  /** Rows read and refunded per batch (RECOVERY_BATCH_SIZE). */
  batchSize?: number;
  /** Tests only, to skip time: ages and expiry are judged at this clock's now. By default the database's now(). */
  clock?: () => Date;
  logger: Logger;
  /** Receives a `refunded` event per recovered charge (logs, metrics); a failed refund is `transactionFailed`. */
  observer?: ChargeObserver;
  /**
   * The lease this (stopping) instance has just ended (InstanceLease.release()): its holds are
   * refunded with RECOVERY_SHUTDOWN_REASON instead of RECOVERY_REFUND_REASON.
   */
  stoppingInstanceId?: string;
  /**
   * The holds whose refund failed on an earlier pass, kept by the caller across its passes (one per
   * recovery scheduler): a repeated failure is logged at warn instead of raising another alert.
   * Without it every failure is reported as new.
   */
  refundFailures?: RepeatedRefundFailures;
}

export interface RecoveryReport {
  /** Refunds this pass wrote. */
  refunded: number;
  /** Credits those refunds gave back. */
  refundedCredits: number;
  /** Pending rows that were settled by someone else (the request itself, another instance) before this pass reached them. */
  alreadySettled: number;
  /** Refunds that failed on the database; the rows stay pending and the next pass retries them. */
  failed: number;
  /** Of `failed`, those whose hold had already failed on an earlier pass (logged at warn, no new alert). */
  stillFailing: number;
  purgedIdempotencyKeys: number;
  batches: number;
  durationMs: number;
}

interface PendingRow {
  subscription_id: string;
  entry_id: string;
  credit_type: string;
  amount: number | string;
  operation: string | null;
  actor_id: string | null;
  request_id: string | null;
  /** How long the hold has been open, by the same clock as the pass's cutoff. */
  pending_ms: number | string;
  /** created_at as text: the keyset cursor must keep PostgreSQL's microseconds, which a JS Date drops. */
  cursor: string;
  /** True when its instance's lease is still live: the refund is for overstaying CHARGE_SETTLE_TIMEOUT. */
  overdue: boolean;
  /** True when it is a hold of the instance stopping (RecoveryPassOptions.stoppingInstanceId). */
  stopping: boolean;
}

const DEFAULT_BATCH_SIZE = 100;

/**
 * The balances ("subscription/credit type") whose row a refund of this pass found locked by another
 * session, with the lock_not_available error it got: their other holds would wait out the same lock.
 */
type LockedBalances = Map<string, unknown>;

function balanceOf(row: PendingRow): string {
  return `${row.subscription_id}/${row.credit_type}`;
}

export async function runRecoveryPass(options: RecoveryPassOptions): Promise<RecoveryReport> {
  const { db, logger, observer } = options;
  // Without the caller's memory, one for this pass alone: each failure is then news, as it is to a
  // single pass (which reads a hold once).
  const failures = options.refundFailures ?? createRepeatedRefundFailures();
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  const log = logger.child({ component: "recovery" });
  const started = performance.now();
  const injectedNow = options.clock?.();
  const passNow = injectedNow ? sql`${injectedNow.toISOString()}::timestamptz` : sql`now()`;
  const report: RecoveryReport = { refunded: 0, refundedCredits: 0, alreadySettled: 0, failed: 0, stillFailing: 0, purgedIdempotencyKeys: 0, batches: 0, durationMs: 0 };

  // Keyset pagination over (created_at, entry_id): a row whose refund keeps failing is passed over
  // until the next pass instead of being read again and again by this one.
  let after: { createdAt: string; entryId: string } | undefined;
  const lockedBalances: LockedBalances = new Map();
  for (;;) {
    const rows = await selectUnsettled(db, passNow, options.settleTimeoutMs, after, batchSize, options.stoppingInstanceId);
    if (rows.length === 0) break;
    report.batches++;
    for (const row of rows) await refundUnsettled(db, row, report, log, observer, failures, lockedBalances);
    const last = rows[rows.length - 1];
    after = { createdAt: last.cursor, entryId: last.entry_id };
    if (rows.length < batchSize) break;
    log.info({ event: "recovery.progress", batches: report.batches, refunded: report.refunded, failed: report.failed }, "recovery pass in progress");
  }

  await queryRows(db, sql`delete from instance_leases where expires_at < now() - ${LEASE_RETENTION}::interval`);
  for (;;) {
    const purged = await purgeExpiredKeys(db, batchSize * 10, injectedNow);
    report.purgedIdempotencyKeys += purged;
    if (purged < batchSize * 10) break;
  }

  report.durationMs = Math.round(performance.now() - started);
  const didWork = report.refunded + report.failed + report.alreadySettled + report.purgedIdempotencyKeys > 0;
  const summary = { event: "recovery.pass", ...report, settleTimeoutMs: options.settleTimeoutMs };
  // At error only when a refund failed for the first time: holds that keep failing were reported already.
  if (report.failed > report.stillFailing) log.error(summary, "recovery pass finished with failed refunds (retried next pass)");
  else if (report.failed > 0) log.warn(summary, "recovery pass finished with refunds still failing (retried next pass)");
  else if (didWork) log.info(summary, "recovery pass finished");
  else log.debug(summary, "recovery pass finished: nothing to do");
  return report;
}

/**
 * The pending rows to refund: those of an instance whose lease has expired, and those older than
 * the settle timeout at `passNow` (the database's now(), or a test's clock). `created_at < now() -
 * interval` keeps the scan on pending_charges_created_idx.
 */
async function selectUnsettled(
  db: Database,
  passNow: SQL,
  settleTimeoutMs: number,
  after: { createdAt: string; entryId: string } | undefined,
  limit: number,
  stoppingInstanceId: string | undefined,
): Promise<PendingRow[]> {
  const afterCursor = after
    ? sql`and (p.created_at, p.entry_id) > (${after.createdAt}::timestamptz, ${after.entryId}::uuid)`
    : sql``;
  return queryRows<PendingRow>(
    db,
    // A lease's expiry is judged by the database's clock, as its renewal is, and so is a hold's age.
    sql`select p.subscription_id, p.entry_id, p.credit_type, p.amount, p.operation, p.actor_id, p.request_id,
               extract(epoch from ${passNow} - p.created_at) * 1000 as pending_ms,
               p.created_at::text as cursor, l.id is not null as overdue,
               coalesce(p.instance_id = ${stoppingInstanceId ?? null}::uuid, false) as stopping
          from pending_charges p
          left join instance_leases l on l.id = p.instance_id and l.expires_at > now()
         where ((p.instance_id is not null and l.id is null)
                or p.created_at < ${passNow} - ${settleTimeoutMs}::double precision * interval '1 millisecond')
               ${afterCursor}
         order by p.created_at, p.entry_id
         limit ${limit}`,
  );
}

async function refundUnsettled(
  db: Database,
  row: PendingRow,
  report: RecoveryReport,
  log: Logger,
  observer: ChargeObserver | undefined,
  failures: RepeatedRefundFailures,
  lockedBalances: LockedBalances,
): Promise<void> {
  const facts = {
    requestId: row.request_id ?? "recovery",
    operation: row.operation ?? "",
    subscriptionId: row.subscription_id,
    creditType: row.credit_type,
    actorId: row.actor_id ?? "",
  };
  const reason = row.overdue ? RECOVERY_OVERDUE_REASON : row.stopping ? RECOVERY_SHUTDOWN_REASON : RECOVERY_REFUND_REASON;
  const lockedBy = lockedBalances.get(balanceOf(row));
  if (lockedBy !== undefined) {
    // Not tried: its balance row was locked a moment ago and would cost another lock timeout.
    report.failed++;
    reportRefundFailure(row, facts, lockedBy, report, log, observer, failures);
    return;
  }
  try {
    // The REFUND keeps the original request id, so the ledger ties it to the request that was charged.
    const [outcome] = await writeWithLockTimeout(db, RECOVERY_LOCK_TIMEOUT_MS, (tx) =>
      runLedgerCommand(tx, {
        kind: "settle",
        settlements: [
          { kind: "void", subscriptionId: row.subscription_id, entryId: row.entry_id, reason, actorId: null, requestId: row.request_id },
        ],
      }),
    );
    // Settled either way: a later failure of this entry would be news.
    failures.forget(row.entry_id);
    if (!outcome.settled) {
      report.alreadySettled++;
      return;
    }
    const entry = { amount: outcome.returned ?? Number(row.amount), balanceAfter: outcome.balanceAfter ?? 0 };
    report.refunded++;
    report.refundedCredits += entry.amount;
    log.warn(
      {
        event: "recovery.refunded",
        ...facts,
        entryId: row.entry_id,
        refunded: entry.amount,
        remaining: entry.balanceAfter,
        pendingSinceMs: Math.round(Number(row.pending_ms)),
        reason,
      },
      "refunded a charge its request never settled",
    );
    observer?.refunded({ ...facts, entryId: row.entry_id, refunded: entry.amount, remaining: entry.balanceAfter, reason });
  } catch (err) {
    if (lockTimedOut(err)) lockedBalances.set(balanceOf(row), err);
    report.failed++;
    reportRefundFailure(row, facts, err, report, log, observer, failures);
  }
}

/**
 * The first failure of a hold's refund raises FAILED_TRANSACTION (observer) and an error log; its
 * later failures, on later passes, are a warn log with the attempts so far, since the operator has
 * already heard of this hold and the next pass retries it anyway. A refund left for a row lock says
 * so (lock_not_available), so that the operator looks for the long transaction holding it.
 */
function reportRefundFailure(
  row: PendingRow,
  facts: ChargeFacts,
  err: unknown,
  report: RecoveryReport,
  log: Logger,
  observer: ChargeObserver | undefined,
  failures: RepeatedRefundFailures,
): void {
  const attempts = failures.failed(row.entry_id);
  const lock = lockWaitOf(err);
  if (attempts === 1) {
    observer?.transactionFailed({ ...facts, stage: "refund", entryId: row.entry_id, amount: Number(row.amount), error: err });
    log.error({ event: "recovery.refund_failed", ...facts, entryId: row.entry_id, ...lock?.fields, err }, `recovery refund failed${lock?.message ?? ""}; the next pass retries it`);
    return;
  }
  report.stillFailing++;
  log.warn(
    { event: "recovery.refund_still_failing", ...facts, entryId: row.entry_id, attempts, ...lock?.fields, err },
    `recovery refund failed again (already reported)${lock?.message ?? ""}; the next pass retries it`,
  );
}

/**
 * For a refund left because its balance row stayed locked: the log fields and words that say so.
 * The driver's own message ("canceling statement due to lock timeout") reads like a slow database;
 * the cause is a transaction of another session, which pg_stat_activity shows.
 */
function lockWaitOf(err: unknown): { fields: Record<string, unknown>; message: string } | undefined {
  if (!lockTimedOut(err)) return undefined;
  return {
    fields: { sqlState: LOCK_NOT_AVAILABLE, lockNotAvailable: true, lockTimeoutMs: RECOVERY_LOCK_TIMEOUT_MS },
    message:
      `: a row it writes (its balance, or its pending hold) stayed locked by another session for over ${RECOVERY_LOCK_TIMEOUT_MS} ms` +
      ` (SQLSTATE ${LOCK_NOT_AVAILABLE} lock_not_available; look for a long transaction in pg_stat_activity)`,
  };
}
