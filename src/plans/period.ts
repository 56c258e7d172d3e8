/**
 * Plan periods: `1mo` (calendar months; `3mo` works too) or a duration (`30d`, `24h`, `10s`). The
 * n-th period boundary is computed from the first period's start, never from the previous boundary,
 * so a month that starts on the 31st comes back to the 31st whenever the month has one.
 *
 * A period is a whole number and its unit, nothing else (no spaces, fractions or signs), of 1 s up to
 * 100 years. There is no `m` unit: elsewhere in the configuration "1m" is a minute (RATE_LIMIT_*),
 * but in a plan it is too easily meant as a month, granting the allowance 43,000 times a month.
 */
export type PlanPeriod = { kind: "months"; months: number; text: string } | { kind: "duration"; ms: number; text: string };

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, h: 3_600_000, d: 86_400_000 };
/** Longest period: 100 years, so that the ends of the periods a subscription lives through fit in a date. */
export const MAX_PERIOD_MONTHS = 1_200;
export const MAX_PERIOD_DAYS = 36_500;
const MAX_PERIOD_MS = MAX_PERIOD_DAYS * UNIT_MS.d;

/** Parses a period, or says what is wrong with it (one sentence, starting with the period itself). */
export function readPeriod(text: string): PlanPeriod | { problem: string } {
  const quoted = JSON.stringify(text);
  const match = /^(\d+)(mo|ms|s|m|h|d)$/.exec(text);
  if (!match) {
    return {
      problem:
        `period ${quoted} must be a whole number of calendar months ("1mo") or of days, hours, seconds or milliseconds of 1s or more ` +
        `("30d", "24h", "10s"), without spaces`,
    };
  }
  const [, digits, unit] = match;
  const n = Number(digits);
  if (unit === "m") {
    return {
      problem:
        n === 1
          ? `period ${quoted} would be minutes: write "1mo" for a calendar month, or the minutes in seconds or hours (such as "60s")`
          : `period ${quoted} would be minutes: write "${digits}mo" for calendar months, or the minutes in seconds or hours (such as "${n * 60}s")`,
    };
  }
  const tooLong = { problem: `period ${quoted} is longer than 100 years (at most "${MAX_PERIOD_MONTHS}mo" or "${MAX_PERIOD_DAYS}d")` };
  if (unit === "mo") {
    if (n < 1) return { problem: `period ${quoted} must be at least "1mo"` };
    return n <= MAX_PERIOD_MONTHS ? { kind: "months", months: n, text } : tooLong;
  }
  const ms = n * UNIT_MS[unit];
  // Shorter than a second would renew faster than any recovery pass runs.
  if (ms < 1_000) return { problem: `period ${quoted} is shorter than 1s` };
  return ms <= MAX_PERIOD_MS ? { kind: "duration", ms, text } : tooLong;
}

/** Parses a period, or undefined when it is not one (readPeriod says why). */
export function parsePeriod(text: string): PlanPeriod | undefined {
  const period = readPeriod(text);
  return "problem" in period ? undefined : period;
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
