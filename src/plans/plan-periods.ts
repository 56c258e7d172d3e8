/**
 * Plan periods: the first starts when a subscription on a configured plan is opened, and the
 * recovery pass renews each one when it ends (credit_plan_renew, last in drizzle/0019_plan_renewal_room.sql,
 * does the credits: rollover, expiry, the new allowance, capped at the room left once it is done).
 *
 * Renewal is safe on any number of instances: a subscription's period row is taken FOR UPDATE SKIP
 * LOCKED, and re-read under the lock, so one instance renews a boundary and another skips it.
 * Periods missed while no instance ran are renewed one after another, in order, up to
 * MAX_PERIODS_PER_TRANSACTION per transaction (the pass comes straight back for the rest).
 * A subscription left without a period (its plan unknown to the configuration or granting nothing, or
 * cancelled) starts a new first one when its plan is configured again (granting something) or it is
 * reactivated (startMissingPeriods).
 */
import { sql } from "drizzle-orm";
import { queryRows, type Database, type DbOrTx } from "../db/database.js";
import { findPlan, grantsSomething, type PlanDefinition } from "./plan-config.js";
import { periodEnd } from "./period.js";

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
  options: { onlySubscriptionId?: string; onFailure?: RenewalFailure } = {},
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
    const missing = await queryRows<{ id: string; plan: string }>(
      db,
      sql`select s.id, s.plan from billing_subscriptions s
           where s.plan = any(${sql.param(names)}::text[]) and s.status <> 'CANCELLED' ${only}
             and not exists (select 1 from plan_periods p where p.subscription_id = s.id)
             and s.id <> all(${sql.param(passedOver)}::uuid[])
           order by s.created_at, s.id limit ${DUE_BATCH}`,
    );
    for (const { id, plan } of missing) {
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
  return db.transaction(async (tx) => {
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
}

/** Told of each subscription whose renewal failed (the pass logs it). */
export type RenewalFailure = (subscriptionId: string, error: unknown) => void;

interface PeriodRow {
  subscription_id: string;
  plan: string;
  anchor_at: Date | string;
  period_number: number;
  period_end: Date | string;
  now: Date | string;
  status: string;
}

/**
 * Renews every period that has ended, oldest first, until none is due. A subscription whose renewal
 * fails is reported and passed over until the next pass, so it never holds up the others' renewals.
 */
export async function renewDuePeriods(db: Database, plans: readonly PlanDefinition[], onFailure: RenewalFailure = () => {}): Promise<RenewalReport> {
  const report: RenewalReport = { renewed: 0, closed: 0, failed: 0 };
  const failed: string[] = [];
  for (;;) {
    const due = await queryRows<{ subscription_id: string }>(
      db,
      sql`select subscription_id from plan_periods
           where period_end <= now() and subscription_id <> all(${sql.param(failed)}::uuid[])
           order by period_end limit ${DUE_BATCH}`,
    );
    let progressed = false;
    for (const { subscription_id } of due) {
      try {
        const outcome = await renewSubscription(db, subscription_id, plans);
        report.renewed += outcome.renewed;
        report.closed += outcome.closed;
        progressed ||= outcome.renewed + outcome.closed > 0;
      } catch (err) {
        failed.push(subscription_id);
        report.failed++;
        progressed = true;
        onFailure(subscription_id, err);
      }
    }
    // Rows another instance holds are skipped; it renews them.
    if (due.length < DUE_BATCH || !progressed) return report;
  }
}

async function renewSubscription(db: Database, subscriptionId: string, plans: readonly PlanDefinition[]): Promise<Omit<RenewalReport, "failed">> {
  return db.transaction(async (tx) => {
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
      return { renewed: 0, closed: 1 };
    }
    const anchor = new Date(row.anchor_at);
    const now = new Date(row.now).getTime();
    let n = Number(row.period_number);
    let end = new Date(row.period_end);
    let renewed = 0;
    while (end.getTime() <= now && renewed < MAX_PERIODS_PER_TRANSACTION) {
      const next = periodEnd(anchor, plan.period, n + 1);
      for (const a of plan.allowances) {
        await tx.execute(sql`
          select credit_plan_renew(${subscriptionId}::uuid, ${a.type}, ${end.toISOString()}::timestamptz, ${next.toISOString()}::timestamptz,
                                   ${a.allowance}::int, ${a.rolloverMax}::int, ${plan.name})`);
      }
      n++;
      renewed++;
      end = next;
    }
    await tx.execute(sql`
      update plan_periods
         set period_number = ${n}::int, period_start = ${periodEnd(anchor, plan.period, n - 1).toISOString()}::timestamptz,
             period_end = ${end.toISOString()}::timestamptz
       where subscription_id = ${subscriptionId}::uuid`);
    return { renewed, closed: 0 };
  });
}
