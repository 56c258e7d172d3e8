/**
 * Plan periods: the first starts when a subscription on a configured plan is opened, and the
 * recovery pass renews each one when it ends (credit_plan_renew, last in drizzle/0019_plan_renewal_room.sql,
 * does the credits: rollover, expiry, the new allowance, capped at the room left once it is done).
 *
 * Renewal is safe on any number of instances: a subscription's period row is taken FOR UPDATE SKIP
 * LOCKED, and re-read under the lock, so one instance renews a boundary and another skips it.
 * Periods missed while no instance ran are renewed one after another, in order, up to
 * MAX_PERIODS_PER_TRANSACTION per transaction (the pass comes straight back for the rest).
 *
 * A backlog (tens of thousands of subscriptions sharing one period end, periods missed during a
 * downtime, short periods on a slow database) can take far longer than a recovery pass may: the
 * pass's refunds and expiries, and a stopping server, must not wait for it. So renewDuePeriods
 * checks its limits (RenewalLimits: a time budget, a stop signal) before each subscription and
 * between the periods of one, and returns with the rest still due; what it renewed is committed,
 * and the next pass resumes with the periods that ended first.
 * A subscription left without a period (its plan unknown to the configuration or granting nothing, or
 * cancelled) starts a new first one when its plan is configured again (granting something) or it is
 * reactivated (startMissingPeriods).
 */
import { sql } from "drizzle-orm";
import { queryRows, type Database, type DbOrTx } from "../db/database.js";
import { findPlan, grantsSomething, type PlanDefinition } from "./plan-config.js";
import { periodEnd, type PlanPeriod } from "./period.js";
import { lockTimedOut, MAINTENANCE_LOCK_TIMEOUT_MS, writeWithLockTimeout } from "../db/lock-timeout.js";

const MAX_PERIODS_PER_TRANSACTION = 100;
const DUE_BATCH = 100;

const reasonOf = (plan: PlanDefinition) => `plan ${plan.name}: allowance`;

/**
 * Starts the first period of a new subscription on `plan`: records the period and grants each
 * allowance as a PLAN grant expiring at the period's end. Run inside the transaction that opens it.
 * A plan that grants nothing (every allowance 0) has no period: null, and nothing is written.
 */
export async function startFirstPeriod(tx: DbOrTx, subscriptionId: string, plan: PlanDefinition): Promise<Date | null> {
  if (!grantsSomething(plan)) return null;
  const [{ now }] = await queryRows<{ now: Date | string }>(tx, sql`select now() as now`);
  const anchor = new Date(now);
  const end = periodEnd(anchor, plan.period, 1);
  await tx.execute(sql`
    insert into plan_periods (subscription_id, plan, anchor_at, period_number, period_start, period_end)
    values (${subscriptionId}::uuid, ${plan.name}, ${anchor.toISOString()}::timestamptz, 1, ${anchor.toISOString()}::timestamptz,
            ${end.toISOString()}::timestamptz)`);
  for (const a of plan.allowances) {
    if (a.allowance === 0) continue;
    await tx.execute(
      sql`select credit_plan_grant(${subscriptionId}::uuid, ${a.type}, ${a.allowance}::int, ${end.toISOString()}::timestamptz, ${reasonOf(plan)})`,
    );
  }
  return end;
}

/**
 * Starts a first period, now, for each subscription on a configured plan that has none and is not
 * cancelled (or for `onlySubscriptionId` alone). A subscription is without a period when its plan was
 * unknown to the configuration when it was opened or when its period ended (renewal closed it), or
 * when it was cancelled; once the plan is configured again, or the subscription is reactivated, its
 * plan grants again from the next start or the reactivation, instead of never again. Each start is
 * one transaction under the subscription's row lock, rechecked there, so instances starting together
 * start it once. Returns how many periods were started.
 */
export async function startMissingPeriods(
  db: DbOrTx,
  plans: readonly PlanDefinition[],
  options: { onlySubscriptionId?: string; onFailure?: RenewalFailure; signal?: AbortSignal } = {},
): Promise<number> {
  // A plan that grants nothing has no periods to start.
  const names = plans.filter(grantsSomething).map((p) => p.name);
  if (names.length === 0) return 0;
  const only = options.onlySubscriptionId ? sql`and s.id = ${options.onlySubscriptionId}::uuid` : sql``;
  // Subscriptions not started by this call (failed, or locked by another instance that starts them):
  // never read again by it, so it ends.
  const passedOver: string[] = [];
  let started = 0;
  for (;;) {
    // A stopping server leaves the rest to the next start (this runs again at every start).
    if (options.signal?.aborted) return started;
    const missing = await queryRows<{ id: string; plan: string }>(
      db,
      sql`select s.id, s.plan from billing_subscriptions s
           where s.plan = any(${sql.param(names)}::text[]) and s.status <> 'CANCELLED' ${only}
             and not exists (select 1 from plan_periods p where p.subscription_id = s.id)
             and s.id <> all(${sql.param(passedOver)}::uuid[])
           order by s.created_at, s.id limit ${DUE_BATCH}`,
    );
    for (const { id, plan } of missing) {
      if (options.signal?.aborted) return started;
      try {
        if (await startPeriodIfMissing(db, id, findPlan(plans, plan)!)) started++;
        else passedOver.push(id);
      } catch (err) {
        passedOver.push(id);
        options.onFailure?.(id, err);
      }
    }
    if (missing.length < DUE_BATCH) return started;
  }
}

async function startPeriodIfMissing(db: DbOrTx, subscriptionId: string, plan: PlanDefinition): Promise<boolean> {
  // A balance row locked by a long transaction elsewhere fails this subscription (left for the next
  // pass), instead of stalling every subscription after it.
  return writeWithLockTimeout(db, MAINTENANCE_LOCK_TIMEOUT_MS, async (tx) => {
    const [still] = await queryRows<{ id: string }>(
      tx,
      sql`select s.id from billing_subscriptions s
           where s.id = ${subscriptionId}::uuid and s.status <> 'CANCELLED'
             and not exists (select 1 from plan_periods p where p.subscription_id = s.id)
             for update of s skip locked`,
    );
    if (!still) return false;
    await startFirstPeriod(tx, subscriptionId, plan);
    return true;
  });
}

export interface RenewalReport {
  /** Period boundaries renewed. */
  renewed: number;
  /** Subscriptions cancelled, or whose plan the configuration no longer knows or now grants nothing: their period is closed, nothing more is granted. */
  closed: number;
  /** Subscriptions whose renewal failed: left for the next pass, after the others were renewed. */
  failed: number;
  /**
   * Set when the call returned before it had caught up, leaving what is still due to the next pass:
   * its time budget was spent ("budget"), or its signal was aborted ("stopped"). Absent when it caught up.
   */
  interrupted?: "budget" | "stopped";
}

/** Told of each subscription whose renewal failed (the pass logs it). */
export type RenewalFailure = (subscriptionId: string, error: unknown) => void;

/**
 * Where a catch-up (a full batch of DUE_BATCH subscriptions due) stands: told after each batch, and
 * when the budget or a stop ends the call with periods still due.
 */
export interface RenewalProgress {
  /** Subscriptions whose period had ended when the catch-up began (each may be several periods behind). */
  due: number;
  /** Subscriptions this call has handled so far (renewed, closed, failed or skipped as locked). */
  done: number;
  renewed: number;
  closed: number;
  failed: number;
}

/** How far one call may go: the recovery pass bounds it, so its other work and a stop never wait for a backlog. */
export interface RenewalLimits {
  /** Starts no renewal once this long (ms) has passed since the call began; what is still due is left for the next call. */
  budgetMs?: number;
  /** Aborted when the server stops: the call returns after the transaction it is in. */
  signal?: AbortSignal;
  onProgress?: (progress: RenewalProgress) => void;
  /** A subscription's periods ended for good at this renewal (PeriodClosure says why). */
  onClosed?: (closure: PeriodClosure) => void;
  /**
   * The subscriptions whose renewal found a row locked by another session (lock_not_available), kept
   * by the caller across calls: renewed after every other due subscription. Updated in place.
   */
  locked?: Set<string>;
}

/** Why a subscription's plan periods were closed: its plan left the configuration, grants nothing now, or it was cancelled. */
export interface PeriodClosure {
  subscriptionId: string;
  plan: string;
  why: "plan not configured" | "plan grants nothing" | "subscription cancelled";
}

type Interruption = RenewalReport["interrupted"];

/** Why the call must return now, if it must: its signal is aborted, or its budget is spent. */
function interruptionCheck(limits: RenewalLimits): () => Interruption {
  const deadline = limits.budgetMs === undefined ? Infinity : performance.now() + limits.budgetMs;
  return () => (limits.signal?.aborted ? "stopped" : performance.now() >= deadline ? "budget" : undefined);
}

interface PeriodRow {
  subscription_id: string;
  plan: string;
  anchor_at: Date | string;
  period_number: number;
  period_end: Date | string;
  now: Date | string;
  status: string;
}

/** The subscriptions whose period has ended, those whose period ended first first, but for those that failed in this call. */
async function dueSubscriptions(db: Database, failed: readonly string[]): Promise<{ subscription_id: string }[]> {
  return queryRows<{ subscription_id: string }>(
    db,
    sql`select subscription_id from plan_periods
         where period_end <= now() and subscription_id <> all(${sql.param(failed)}::uuid[])
         order by period_end limit ${DUE_BATCH}`,
  );
}

/** How many subscriptions' periods have ended (plan_periods_end_idx): read once, for a catch-up's progress lines. */
async function countDue(db: Database): Promise<number> {
  const [{ n }] = await queryRows<{ n: number | string }>(db, sql`select count(*) as n from plan_periods where period_end <= now()`);
  return Number(n);
}

/**
 * Renews the periods that have ended, those that ended first first, until none is due or `limits`
 * stop it (then `interrupted` says why, and the next call resumes). A subscription whose renewal
 * fails is reported and passed over until the next call, so it never holds up the others' renewals.
 */
export async function renewDuePeriods(
  db: Database,
  plans: readonly PlanDefinition[],
  onFailure: RenewalFailure = () => {},
  limits: RenewalLimits = {},
): Promise<RenewalReport> {
  const report: RenewalReport = { renewed: 0, closed: 0, failed: 0 };
  const interruption = interruptionCheck(limits);
  const failed: string[] = [];
  const locked = limits.locked ?? new Set<string>();
  // Set once a full batch is due (a catch-up): then progress is told after each batch, and where it
  // stands when the budget or a stop ends the call.
  let due: number | undefined;
  let done = 0;
  const interrupt = (interrupted: Interruption): RenewalReport => {
    if (due !== undefined) limits.onProgress?.({ due, done, ...report });
    return { ...report, interrupted };
  };
  /** Renews one subscription; true when it changed something (or failed: either way, progress). */
  const renewOne = async (subscriptionId: string): Promise<boolean> => {
    try {
      const outcome = await renewSubscription(db, subscriptionId, plans, interruption);
      locked.delete(subscriptionId);
      report.renewed += outcome.renewed;
      report.closed += outcome.closed;
      if (outcome.closure) limits.onClosed?.(outcome.closure);
      return outcome.renewed + outcome.closed > 0;
    } catch (err) {
      failed.push(subscriptionId);
      if (lockTimedOut(err)) locked.add(subscriptionId);
      else locked.delete(subscriptionId);
      report.failed++;
      onFailure(subscriptionId, err);
      return true;
    } finally {
      done++;
    }
  };
  // The subscriptions due, those that ended first first; those whose rows were locked on an earlier
  // call come after all the others (an outside audit: while a lock lasted, each pass spent its budget
  // waiting on the same locked subscriptions first, and renewed no one behind them).
  for (;;) {
    const before = interruption();
    if (before) return interrupt(before);
    const batch = await dueSubscriptions(db, [...failed, ...locked]);
    if (batch.length === DUE_BATCH && due === undefined && limits.onProgress) due = await countDue(db);
    let progressed = false;
    for (const { subscription_id } of batch) {
      const interrupted = interruption();
      if (interrupted) return interrupt(interrupted);
      progressed = (await renewOne(subscription_id)) || progressed;
    }
    // Rows another instance holds are skipped; it renews them.
    if (batch.length < DUE_BATCH || !progressed) break;
    if (due !== undefined) limits.onProgress?.({ due, done, ...report });
  }
  for (const subscriptionId of [...locked].filter((id) => !failed.includes(id))) {
    const interrupted = interruption();
    if (interrupted) return interrupt(interrupted);
    await renewOne(subscriptionId);
  }
  return report;
}

/**
 * Renews one subscription's ended periods, in order, in one transaction: up to
 * MAX_PERIODS_PER_TRANSACTION of them, fewer when `interruption` says to stop (after at least one, so
 * every transaction makes progress). The period row records how far it got, so the next call resumes there.
 */
async function renewSubscription(
  db: Database,
  subscriptionId: string,
  plans: readonly PlanDefinition[],
  interruption: () => Interruption,
): Promise<Omit<RenewalReport, "failed"> & { closure?: PeriodClosure }> {
  // Bounded wait for the balance rows' locks, as in startPeriodIfMissing.
  return writeWithLockTimeout(db, MAINTENANCE_LOCK_TIMEOUT_MS, async (tx) => {
    const [row] = await queryRows<PeriodRow>(
      tx,
      sql`select p.subscription_id, p.plan, p.anchor_at, p.period_number, p.period_end, now() as now, s.status
            from plan_periods p
            join billing_subscriptions s on s.id = p.subscription_id
           where p.subscription_id = ${subscriptionId}::uuid and p.period_end <= now()
             for update of p skip locked`,
    );
    if (!row) return { renewed: 0, closed: 0 };
    const plan = findPlan(plans, row.plan);
    if (!plan || !grantsSomething(plan) || row.status === "CANCELLED") {
      // The plan left the configuration (or now grants nothing), or the subscription was cancelled:
      // no more periods; the last period's grants expire like any other grant.
      await tx.execute(sql`delete from plan_periods where subscription_id = ${subscriptionId}::uuid`);
      const why = row.status === "CANCELLED" ? "subscription cancelled" : !plan ? "plan not configured" : "plan grants nothing";
      return { renewed: 0, closed: 1, closure: { subscriptionId, plan: row.plan, why } };
    }
    let anchor = new Date(row.anchor_at);
    const now = new Date(row.now).getTime();
    let n = Number(row.period_number);
    let end = new Date(row.period_end);
    if (periodChanged(anchor, n, end, plan.period)) {
      // The plan's period changed since this period was set: the next periods follow the new one from
      // where this one ended, instead of counting every period already lived through again at the new
      // length (an outside audit: 10s → 20s after 6 periods made one of 50 s; 20s → 10s wrote 9
      // renewals at once, 8 of them expired on arrival; 10s → 1mo after 4 made one of five months).
      anchor = end;
      n = 0;
    }
    let renewed = 0;
    // The row was read because its period has ended: the first period is always due.
    do {
      const next = periodEnd(anchor, plan.period, n + 1);
      for (const a of plan.allowances) {
        await tx.execute(sql`
          select credit_plan_renew(${subscriptionId}::uuid, ${a.type}, ${end.toISOString()}::timestamptz, ${next.toISOString()}::timestamptz,
                                   ${a.allowance}::int, ${a.rolloverMax}::int, ${plan.name})`);
      }
      n++;
      renewed++;
      end = next;
    } while (end.getTime() <= now && renewed < MAX_PERIODS_PER_TRANSACTION && !interruption());
    await tx.execute(sql`
      update plan_periods
         set period_number = ${n}::int, period_start = ${periodEnd(anchor, plan.period, n - 1).toISOString()}::timestamptz,
             period_end = ${end.toISOString()}::timestamptz, anchor_at = ${anchor.toISOString()}::timestamptz
       where subscription_id = ${subscriptionId}::uuid`);
    return { renewed, closed: 0 };
  });
}

/**
 * Whether the period that just ended was set under another period than the plan's now: its end is
 * not the n-th boundary from the anchor under the plan's current period (each boundary is computed
 * from the anchor, so under an unchanged period it is exactly that). Compared to the second: a
 * timestamp read back may have lost its microseconds, and two periods differ by a second at least.
 */
function periodChanged(anchor: Date, n: number, end: Date, period: PlanPeriod): boolean {
  return Math.abs(periodEnd(anchor, period, n).getTime() - end.getTime()) >= 1_000;
}
