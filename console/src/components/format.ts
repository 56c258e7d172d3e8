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

/** en-GB's short September is "Sept" (current ICU): every other month has three letters, and so does it here. */
const threeLetterMonth = (text: string) => text.replace("Sept", "Sep");

/**
 * The one format of every instant the console prints (tables, messages): day first, the month in
 * letters, so it reads the same in every locale ("02 Dec 2026, 02:17:00", the browser's local time).
 * Only a native date input keeps the browser's own format.
 */
export function fmtTime(iso: string): string {
  const d = new Date(iso);
  return threeLetterMonth(d.toLocaleString("en-GB", { year: "numeric", month: "short", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" }));
}

/** A calendar day (YYYY-MM-DD, as usage buckets key them) in the same format: "02 Dec 2026", or "02 Dec" without the year. */
export function fmtDay(day: string, withYear = true): string {
  const at = new Date(`${day}T00:00:00Z`);
  if (Number.isNaN(at.getTime())) return day;
  return threeLetterMonth(at.toLocaleDateString("en-GB", { timeZone: "UTC", day: "2-digit", month: "short", ...(withYear ? { year: "numeric" } : {}) }));
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

/** The calendar day (YYYY-MM-DD) of the instant `at` in `timeZone`. */
function dayIn(at: number, timeZone: string): string {
  return new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" }).format(at);
}

/** How far `timeZone`'s wall clock is ahead of UTC at the instant `at`, in ms. */
function offsetIn(at: number, timeZone: string): number {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone,
    hourCycle: "h23",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  }).formatToParts(at);
  const part = (type: string) => Number(parts.find((p) => p.type === type)?.value);
  const wall = Date.UTC(part("year"), part("month") - 1, part("day"), part("hour"), part("minute"), part("second"));
  return wall - Math.floor(at / 1000) * 1000;
}

/**
 * The first instant of the day `days` days before today, both in `timeZone`, as the usage window's
 * start: the charts list the viewer's days, so the window starts at the viewer's midnight (an
 * outside audit: it started at midnight UTC, and the first day shown counted only part of its
 * credits, in every zone but UTC). A day that begins after a gap (a clock change at midnight, as in
 * Santiago) begins at the first instant it has.
 */
export function daysAgo(days: number, timeZone: string, now = Date.now()): string {
  const [year, month, day] = dayIn(now, timeZone).split("-").map(Number);
  const midnightAsUtc = Date.UTC(year, month - 1, day - days);
  const target = new Date(midnightAsUtc).toISOString().slice(0, 10);
  // The zone's offset near that midnight, then again at the guess (the offset may change at it).
  let start = midnightAsUtc - offsetIn(midnightAsUtc, timeZone);
  start = midnightAsUtc - offsetIn(start, timeZone);
  const QUARTER_HOUR = 15 * 60_000;
  while (dayIn(start, timeZone) < target) start += QUARTER_HOUR;
  while (dayIn(start - QUARTER_HOUR, timeZone) === target) start -= QUARTER_HOUR;
  return new Date(start).toISOString();
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
