/**
 * Expiry, run by the recovery pass: what is left of every expired grant is removed by an EXPIRATION
 * entry (credit_expire_grants in drizzle/0005_grants.sql). Each balance is expired in its own short
 * transaction that locks the balance row first, so any number of instances may run this at once:
 * the second to reach a balance finds nothing left, and no grant is expired twice. Whatever expired
 * while no instance ran is found by the same query, so the first pass after a downtime catches up.
 *
 * A PLAN grant whose period has not been renewed yet is left alone, here and in
 * credit_expire_grants itself: its renewal rolls part of it over, then expires the rest. So expiry
 * may run before the renewals of the same pass (grants/maintenance.ts) without taking credits a
 * renewal would carry over.
 */
import { sql } from "drizzle-orm";
import { queryRows, type DbOrTx } from "../db/database.js";
import { MAINTENANCE_LOCK_TIMEOUT_MS, writeWithLockTimeout } from "../db/lock-timeout.js";

export interface ExpiryReport {
  /** Balances visited. */
  balances: number;
  /** EXPIRATION entries written. */
  expired: number;
  /** Balances whose expiry failed: left for the next pass, after the others were expired. */
  failed: number;
  /** Set when the signal was aborted (the server stops) before every due balance was expired: the next pass does the rest. */
  interrupted?: "stopped";
}

/** Told of each balance whose expiry failed (the pass logs it). */
export type ExpiryFailure = (balance: { subscriptionId: string; creditType: string }, error: unknown) => void;

const DEFAULT_BATCH = 100;

/**
 * Balances with an expired grant that still has credits (and is not a PLAN grant waiting for its
 * renewal), but for those whose expiry failed earlier in this pass.
 */
async function dueBalances(db: DbOrTx, limit: number, failed: readonly string[]): Promise<{ subscription_id: string; credit_type: string }[]> {
  return queryRows(
    db,
    sql`select distinct g.subscription_id, g.credit_type
          from credit_grants g
         where not g.exhausted and g.expires_at <= now()
           and not (g.category = 'PLAN' and exists (
                 select 1 from plan_periods p where p.subscription_id = g.subscription_id and p.period_end <= g.expires_at))
           and (g.subscription_id::text || '/' || g.credit_type) <> all(${sql.param(failed)}::text[])
         limit ${limit}`,
  );
}

/**
 * Expires every due balance; one whose expiry fails is reported and passed over until the next pass.
 * An aborted `signal` (the server stops) ends it after the balance it is on.
 */
export async function expireDueGrants(
  db: DbOrTx,
  batchSize = DEFAULT_BATCH,
  onFailure: ExpiryFailure = () => {},
  signal?: AbortSignal,
): Promise<ExpiryReport> {
  const report: ExpiryReport = { balances: 0, expired: 0, failed: 0 };
  const failed: string[] = [];
  for (;;) {
    if (signal?.aborted) return { ...report, interrupted: "stopped" };
    const due = await dueBalances(db, batchSize, failed);
    for (const balance of due) {
      if (signal?.aborted) return { ...report, interrupted: "stopped" };
      try {
        // Bounded wait for the balance's row lock: one held by a long transaction elsewhere is left
        // for the next pass (reported as a failure) instead of stalling every balance after it.
        const [row] = await writeWithLockTimeout(db, MAINTENANCE_LOCK_TIMEOUT_MS, (tx) =>
          queryRows<{ n: number }>(tx, sql`select credit_expire_grants(${balance.subscription_id}::uuid, ${balance.credit_type}) as n`),
        );
        report.balances++;
        report.expired += Number(row.n);
      } catch (err) {
        failed.push(`${balance.subscription_id}/${balance.credit_type}`);
        report.failed++;
        onFailure({ subscriptionId: balance.subscription_id, creditType: balance.credit_type }, err);
      }
    }
    if (due.length < batchSize) return report;
  }
}
