/**
 * The grants' part of the recovery pass (DESIGN.md, "Retries and crashes"): expire what is left of
 * expired grants, renew plan periods that have ended, then expire what those renewals closed. Run
 * at start and every RECOVERY_INTERVAL, so an expiry is applied about one interval late at most (and
 * a hold never counts on expired credits meanwhile).
 *
 * Expiry goes first, and renewal gets a time budget, because a renewal backlog (tens of thousands of
 * subscriptions sharing one period end, short periods on a loaded database) may take far longer than
 * a pass: run first without a bound, it held up this expiry and, by never letting the pass end, the
 * next pass's refunds of holds past CHARGE_SETTLE_TIMEOUT, for as long as the backlog lasted.
 * Expiring first does not take what a renewal should roll over: expiry leaves a PLAN grant alone
 * while its subscription's period ending at or before the grant's expiry is still due (grants/expiry.ts,
 * credit_expire_grants), and the renewal rolls part of it over and expires the rest itself. Renewal
 * stops once its budget is spent (the next pass resumes with the periods that ended first), or when
 * the server stops (`signal`), after the transaction it is in.
 */
import type { Logger } from "pino";
import type { Database } from "../db/database.js";
import type { PlanDefinition } from "../plans/plan-config.js";
import { renewDuePeriods, startMissingPeriods, type RenewalReport } from "../plans/plan-periods.js";
import { expireDueGrants, type ExpiryReport } from "./expiry.js";
import { LOCK_NOT_AVAILABLE, lockTimedOut, MAINTENANCE_LOCK_TIMEOUT_MS } from "../db/lock-timeout.js";

/** Renewal's share of one pass when the caller gives none: RECOVERY_INTERVAL's default. */
const DEFAULT_RENEWAL_BUDGET_MS = 5_000;

export interface GrantMaintenanceReport {
  /** First periods started for subscriptions on a configured plan that had none (startMissingPeriods). */
  started: number;
  renewal: RenewalReport;
  /** Both expiry runs of the pass: before the renewals, and after them when they closed periods. */
  expiry: ExpiryReport;
}

export async function runGrantMaintenance(options: {
  db: Database;
  plans: readonly PlanDefinition[];
  logger: Logger;
  /**
   * Also start a first period for every subscription on a configured plan that has none: the
   * server's first pass does (its configuration may know plans the last one did not).
   */
  startMissingPeriods?: boolean;
  /**
   * The longest this pass renews (default 5 s). The server gives its RECOVERY_INTERVAL: a pass that
   * spent it is followed at once by the next (recovery-scheduler.ts), so a backlog is renewed at full
   * speed while every pass still refunds and expires about once an interval.
   */
  renewalBudgetMs?: number;
  /** Aborted when the server stops: each step ends after the transaction it is in, leaving the rest to the next start. */
  signal?: AbortSignal;
  /**
   * The subscriptions whose renewal found a row locked by another session, kept across passes by the
   * caller (one set per server): renewed after the others (renewDuePeriods' `locked`).
   */
  lockedRenewals?: Set<string>;
}): Promise<GrantMaintenanceReport> {
  const { db, plans, signal } = options;
  const log = options.logger.child({ component: "recovery" });
  const started = options.startMissingPeriods
    ? await startMissingPeriods(db, plans, {
        signal,
        onFailure: (subscriptionId, err) => log.error({ event: "plans.start_failed", subscriptionId, err }, "plan period start failed: retried at the next start"),
      })
    : 0;
  const expire = () =>
    expireDueGrants(
      db,
      undefined,
      (balance, err) => log.error({ event: "grants.expiry_failed", ...balance, err, ...lockFacts(err) }, `grant expiry failed${lockWords(err)}: retried next pass`),
      signal,
    );
  let expiry = await expire();
  const renewal = await renewDuePeriods(
    db,
    plans,
    (subscriptionId, err) => log.error({ event: "plans.renewal_failed", subscriptionId, err, ...lockFacts(err) }, `plan renewal failed${lockWords(err)}: retried next pass`),
    {
      budgetMs: options.renewalBudgetMs ?? DEFAULT_RENEWAL_BUDGET_MS,
      signal,
      locked: options.lockedRenewals,
      // Once per batch of subscriptions, and only for a catch-up of more than one batch.
      onProgress: (progress) => log.info({ event: "plans.renewal_progress", ...progress }, "plan renewal catching up"),
      // One line per subscription, at warn: its plan credits expire now, and a plan renamed or
      // dropped from PLANS by mistake is otherwise seen only in a count (an outside audit).
      onClosed: (closure) =>
        log.warn({ event: "plans.period_closed", ...closure }, `plan periods closed (${closure.why}): the plan grants this subscription nothing more`),
    },
  );
  // A closed period's last grants are left to expiry, like any other grant: expired in this pass,
  // not one interval later. (A renewed period's rest was expired by the renewal itself.)
  if (renewal.closed > 0) expiry = addExpiry(expiry, await expire());
  const report = { started, renewal, expiry };
  if (started + renewal.renewed + renewal.closed + renewal.failed + expiry.expired + expiry.failed > 0 || renewal.interrupted) {
    const message = renewal.interrupted === "budget" ? "plans renewed and grants expired; periods still due are renewed next pass" : "plans renewed and grants expired";
    log.info({ event: "grants.maintenance", ...report }, message);
  }
  return report;
}

function addExpiry(first: ExpiryReport, second: ExpiryReport): ExpiryReport {
  return {
    balances: first.balances + second.balances,
    expired: first.expired + second.expired,
    failed: first.failed + second.failed,
    ...(first.interrupted || second.interrupted ? { interrupted: "stopped" as const } : {}),
  };
}

/** A failure's fields when it was a lock another session held too long (SQLSTATE 55P03), as the recovery pass logs them. */
function lockFacts(err: unknown): { sqlState?: string; lockNotAvailable?: true; lockTimeoutMs?: number } {
  return lockTimedOut(err) ? { sqlState: LOCK_NOT_AVAILABLE, lockNotAvailable: true, lockTimeoutMs: MAINTENANCE_LOCK_TIMEOUT_MS } : {};
}

/** Words for the message when it was such a lock: where an operator looks for the transaction holding it. */
function lockWords(err: unknown): string {
  return lockTimedOut(err)
    ? ` (a row it writes stayed locked by another session for over ${MAINTENANCE_LOCK_TIMEOUT_MS} ms, SQLSTATE 55P03 lock_not_available: look for a long transaction in pg_stat_activity)`
    : "";
}
