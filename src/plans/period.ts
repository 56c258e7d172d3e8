/**
 * Plan periods: `1mo` (calendar months; `3mo` works too) or a duration (`30d`, `10s`). The n-th
 * period boundary is computed from the first period's start, never from the previous boundary, so a
 * month that starts on the 31st comes back to the 31st whenever the month has one.
 */
import { parseDurationMs } from "../util/duration.js";

export type PlanPeriod = { kind: "months"; months: number; text: string } | { kind: "duration"; ms: number; text: string };

/** Parses a period, or undefined when it is neither `Nmo` nor a positive duration. */
export function parsePeriod(text: string): PlanPeriod | undefined {
  const trimmed = text.trim();
  const months = /^(\d+)\s*mo$/.exec(trimmed);
  if (months) {
    const n = Number(months[1]);
    return n >= 1 && n <= 1200 ? { kind: "months", months: n, text: trimmed } : undefined;
  }
  const ms = parseDurationMs(trimmed);
  // Shorter than a second would renew faster than any recovery pass runs.
  return ms !== undefined && ms >= 1_000 ? { kind: "duration", ms, text: trimmed } : undefined;
}

/** End of period number `n` (1 is the first) of a plan whose first period started at `anchor`. */
export function periodEnd(anchor: Date, period: PlanPeriod, n: number): Date {
  if (period.kind === "duration") return new Date(anchor.getTime() + n * period.ms);
  return addCalendarMonths(anchor, n * period.months);
}

/** `months` calendar months after `date` (UTC), on the same day, or the month's last day when it is shorter. */
export function addCalendarMonths(date: Date, months: number): Date {
  const year = date.getUTCFullYear();
  const month = date.getUTCMonth() + months;
  const lastDay = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
  const result = new Date(date.getTime());
  result.setUTCFullYear(year, month, Math.min(date.getUTCDate(), lastDay));
  return result;
}
