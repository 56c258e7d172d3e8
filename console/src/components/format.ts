/** Shared display helpers. */
export const fmtInt = (n: number) => n.toLocaleString("en-US");

/** A number with one decimal, grouped as fmtInt groups: "571,428,571.4". */
export const fmtDecimal = (n: number) => n.toLocaleString("en-US", { minimumFractionDigits: 1, maximumFractionDigits: 1 });

const COMPACT = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 });

/**
 * A chart axis's tick: short enough for the axis's width at any size, "6B", "1.5M", "25K"; grouped
 * below 10,000 ("2,500"), where it is short anyway. A tooltip or table gives the exact figure.
 */
export const fmtTick = (n: number) => (Math.abs(n) < 10_000 ? fmtInt(n) : COMPACT.format(n));

/**
 * The one format of every instant the console prints (tables, messages): day first, the month in
 * letters, so it reads the same in every locale ("02 Dec 2026, 02:17:00", the browser's local time).
 * Only a native date input keeps the browser's own format.
 */
export function fmtTime(iso: string): string {
  const d = new Date(iso);
  return d.toLocaleString("en-GB", { year: "numeric", month: "short", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

/** A calendar day (YYYY-MM-DD, as usage buckets key them) in the same format: "02 Dec 2026", or "02 Dec" without the year. */
export function fmtDay(day: string, withYear = true): string {
  const at = new Date(`${day}T00:00:00Z`);
  if (Number.isNaN(at.getTime())) return day;
  return at.toLocaleDateString("en-GB", { timeZone: "UTC", day: "2-digit", month: "short", ...(withYear ? { year: "numeric" } : {}) });
}

/**
 * A count of credits of one type, in a sentence: "1 credit (leads)", "25 credits (leads)". Type
 * names are data ("leads", "ai"), so the noun is "credit", pluralised by the count.
 */
export function fmtCredits(n: number, type: string): string {
  return `${fmtCreditCount(n)} (${type})`;
}

/** "1 credit", "500 credits". */
export const fmtCreditCount = (n: number) => `${fmtInt(n)} credit${Math.abs(n) === 1 ? "" : "s"}`;

export const shortId = (id: string) => id.slice(0, 8);

/** The browser's IANA time zone: usage days are counted in it. */
export const browserTimeZone = () => Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

/** Midnight (UTC) `days` days ago, as the usage window's start. */
export function daysAgo(days: number): string {
  const d = new Date();
  d.setUTCHours(0, 0, 0, 0);
  d.setUTCDate(d.getUTCDate() - days);
  return d.toISOString();
}

/**
 * A stable colour per credit type, so charts and cards agree. Each is dark enough to be text on
 * white (4.5:1, WCAG AA): a chart's legend writes the type's name in its colour.
 */
const PALETTE = ["#2f5fe6", "#1a7d55", "#a75914", "#933ee2", "#cb2d56", "#137787"];
export function colourOf(type: string, types: readonly string[]): string {
  const index = types.indexOf(type);
  return PALETTE[(index >= 0 ? index : types.length) % PALETTE.length];
}

/** GraphQL's Int: a whole number the server can take at all. */
export const MAX_INT = 2_147_483_647;

/**
 * A whole number typed into a form ("100", "-25", "+40", spaces around allowed), or undefined when
 * the text is not one or is outside GraphQL's Int. Checked before sending: Number("abc") would be
 * sent as null, and the server's answer would be about variables, not about the field.
 */
export function parseWholeNumber(text: string): number | undefined {
  const trimmed = text.trim();
  if (!/^[+-]?\d+$/.test(trimmed)) return undefined;
  const n = Number(trimmed);
  return n >= -MAX_INT - 1 && n <= MAX_INT ? n : undefined;
}
