/**
 * The figures behind USAGE_SPIKE, computed in SQL from the ledger: credits a subscription had debited
 * in the last window, and in the trailing baseline before it. One indexed range scan over
 * (subscription_id, created_at); it runs off the charge path, after the charge, debounced.
 */
import { sql } from "drizzle-orm";
import { queryRows, type DbOrTx } from "../../db/database.js";

export interface UsageWindowRequest {
  subscriptionId: string;
  /** The clock's "now", in ms since the epoch. */
  nowMs: number;
  windowMs: number;
  baselineMs: number;
}

export interface UsageWindow {
  /** Credits debited after now − window (entries stamped later than "now" count too: clocks drift). */
  recentCredits: number;
  /** Credits debited in (now − window − baseline, now − window]. */
  baselineCredits: number;
  /** baselineCredits spread over the baseline's windows: the usual credits per window. */
  baselineAveragePerWindow: number;
}

export async function readUsageWindow(db: DbOrTx, request: UsageWindowRequest): Promise<UsageWindow> {
  const recentStart = new Date(request.nowMs - request.windowMs).toISOString();
  const baselineStart = new Date(request.nowMs - request.windowMs - request.baselineMs).toISOString();
  const rows = await queryRows<{ recent: string | number; baseline: string | number }>(
    db,
    sql`select coalesce(sum(-amount) filter (where created_at > ${recentStart}::timestamptz), 0) as recent,
               coalesce(sum(-amount) filter (where created_at <= ${recentStart}::timestamptz), 0) as baseline
          from credit_ledger
         where subscription_id = ${request.subscriptionId}::uuid
           and kind = 'DEBIT'
           and created_at > ${baselineStart}::timestamptz`,
  );
  const recentCredits = Number(rows[0]?.recent ?? 0);
  const baselineCredits = Number(rows[0]?.baseline ?? 0);
  return {
    recentCredits,
    baselineCredits,
    baselineAveragePerWindow: baselineCredits / (request.baselineMs / request.windowMs),
  };
}

export interface SpikeRule {
  factor: number;
  minCredits: number;
}

/** A spike: more than `factor` times the usual credits per window, and at least `minCredits`. */
export function isUsageSpike(usage: UsageWindow, rule: SpikeRule): boolean {
  return usage.recentCredits >= rule.minCredits && usage.recentCredits > rule.factor * usage.baselineAveragePerWindow;
}
