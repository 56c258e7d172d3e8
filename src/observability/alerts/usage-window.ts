/**
 * The figures behind USAGE_SPIKE and the rule that reads them: credits a subscription had debited in
 * the last window, and in the trailing baseline before it, from the ledger's DEBIT entries (kept up to
 * date by sliding-usage-windows.ts, off the charge path, after the charge, debounced).
 */

export interface UsageWindow {
  /**
   * Credits debited after now − window ("now" on the database's clock, which stamps the entries; one
   * stamped later, committed after the clock was read, counts too).
   */
  recentCredits: number;
  /** Credits debited in (now − window − baseline, now − window]. */
  baselineCredits: number;
  /** baselineCredits spread over the baseline's windows: the usual credits per window. */
  baselineAveragePerWindow: number;
}

export interface SpikeRule {
  factor: number;
  minCredits: number;
}

/** A spike: more than `factor` times the usual credits per window, and at least `minCredits`. */
export function isUsageSpike(usage: UsageWindow, rule: SpikeRule): boolean {
  return usage.recentCredits >= rule.minCredits && usage.recentCredits > rule.factor * usage.baselineAveragePerWindow;
}
