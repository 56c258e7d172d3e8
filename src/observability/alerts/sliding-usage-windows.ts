/**
 * The figures behind USAGE_SPIKE (usage-window.ts) for the subscriptions this instance checks, kept
 * up to date by reading only the ledger entries that moved since the last check, not both windows
 * again.
 *
 * Why: a subscription being charged is checked every few seconds (spike-detector.ts), and reading its
 * whole baseline each time (24 hours of its debits by default) made every check cost as much as the
 * subscription's last day of traffic. Under the benchmark's load those checks alone raised
 * PostgreSQL's CPU per metered call by about a third once the ledger held a few minutes of history,
 * and a subscription charged a thousand times a second would have had 86 million rows re-read per
 * check. Now a check reads the edges that moved since the last one (a few seconds of debits at the
 * window's end, at the boundary between the window and the baseline, and at the baseline's start),
 * plus the newest few seconds, which are always read afresh.
 *
 * How. Sums are taken up to an edge `SETTLED_AFTER_MS` behind "now": a ledger entry is stamped when its
 * transaction starts and appears at its commit, so the newest entries may still be arriving, but
 * nothing commits that long after its stamp. Kept per subscription, at edge E:
 *   recent   = credits in (E − window, E]
 *   baseline = credits in (E − window − baseline, E − window]
 * At the next check, with E' = now − SETTLED_AFTER_MS:
 *   recent   += (E, E']                           − (E − window, E' − window]
 *   baseline += (E − window, E' − window]         − (E − window − baseline, E' − window − baseline]
 * and the answer is exact for "now", from three more sums read in the same statement:
 *   recent now   = recent + (E', ∞) − (E' − window, now − window]
 *   baseline now = baseline + (E' − window, now − window] − (E' − window − baseline, now − window − baseline]
 * Entries stamped later than "now" count as recent, as they always did. "Now" is the database's
 * clock in production (spike-detector.ts), the one the entries are stamped with: an instance's own may
 * be minutes off it.
 *
 * The whole windows are read again on a subscription's first check, when the clock stepped back, and
 * at least every FULL_READ_EVERY_MS, so an entry written with an old stamp (an import, a test) or a
 * transaction longer than the settling time is counted within the hour.
 */
import { sql, type SQL } from "drizzle-orm";
import { queryRows, type DbOrTx } from "../../db/database.js";
import type { UsageWindow } from "./usage-window.js";

/** How far behind "now" sums are kept: longer than any hold or settlement statement runs. */
export const SETTLED_AFTER_MS = 10_000;
/** Longest time a subscription's sums are kept up to date before both windows are read again. */
export const FULL_READ_EVERY_MS = 3_600_000;
/** Subscriptions whose sums are kept at once; the least recently checked is forgotten first. */
const MAX_TRACKED = 10_000;

export interface UsageWindowSettings {
  windowMs: number;
  baselineMs: number;
}

interface TrackedSums {
  /** Every sum below covers entries stamped at or before this time (ms since the epoch). */
  edgeMs: number;
  recent: number;
  baseline: number;
  fullReadAtMs: number;
}

/** A half-open span of entry stamps, (fromMs, toMs]; toMs undefined: no upper end. */
interface Span {
  fromMs: number;
  toMs?: number;
}

export class SlidingUsageWindows {
  private readonly tracked = new Map<string, TrackedSums>();

  constructor(
    private readonly db: DbOrTx,
    private readonly settings: UsageWindowSettings,
  ) {}

  /** The subscription's credits in the last window and in the baseline before it, as of `nowMs` (on the clock that stamps the entries). */
  async read(subscriptionId: string, nowMs: number): Promise<UsageWindow> {
    const { windowMs: window, baselineMs: baseline } = this.settings;
    const edge = nowMs - SETTLED_AFTER_MS;
    const known = this.tracked.get(subscriptionId);
    const moving = known !== undefined && edge >= known.edgeMs && nowMs - known.fullReadAtMs < FULL_READ_EVERY_MS;

    // The spans that turn the sums at `edge` into the answer for `nowMs`, read by every check.
    const toNow = {
      tail: { fromMs: edge },
      head: { fromMs: edge - window, toMs: nowMs - window },
      baselineHead: { fromMs: edge - window - baseline, toMs: nowMs - window - baseline },
    };
    let sums: TrackedSums;
    let read: Record<keyof typeof toNow, number>;
    if (moving) {
      const from = known.edgeMs;
      const moved = {
        newest: { fromMs: from, toMs: edge },
        intoBaseline: { fromMs: from - window, toMs: edge - window },
        outOfBaseline: { fromMs: from - window - baseline, toMs: edge - window - baseline },
      };
      const got = await sumDebits(this.db, subscriptionId, { ...moved, ...toNow }, [
        { fromMs: from },
        { fromMs: from - window, toMs: nowMs - window },
        { fromMs: from - window - baseline, toMs: nowMs - window - baseline },
      ]);
      sums = {
        edgeMs: edge,
        recent: known.recent + got.newest - got.intoBaseline,
        baseline: known.baseline + got.intoBaseline - got.outOfBaseline,
        fullReadAtMs: known.fullReadAtMs,
      };
      read = got;
    } else {
      const whole = {
        recent: { fromMs: edge - window, toMs: edge },
        baseline: { fromMs: edge - window - baseline, toMs: edge - window },
      };
      const got = await sumDebits(this.db, subscriptionId, { ...whole, ...toNow }, [{ fromMs: edge - window - baseline }]);
      sums = { edgeMs: edge, recent: got.recent, baseline: got.baseline, fullReadAtMs: nowMs };
      read = got;
    }
    this.remember(subscriptionId, sums);

    const recentCredits = sums.recent + read.tail - read.head;
    const baselineCredits = sums.baseline + read.head - read.baselineHead;
    return { recentCredits, baselineCredits, baselineAveragePerWindow: baselineCredits / (baseline / window) };
  }

  private remember(subscriptionId: string, sums: TrackedSums): void {
    // Re-inserted, so the map's order is the order of the last checks.
    this.tracked.delete(subscriptionId);
    this.tracked.set(subscriptionId, sums);
    if (this.tracked.size > MAX_TRACKED) {
      const oldest = this.tracked.keys().next().value;
      if (oldest !== undefined) this.tracked.delete(oldest);
    }
  }
}

function stamp(ms: number): SQL {
  return sql`${new Date(ms).toISOString()}::timestamptz`;
}

function within(span: Span): SQL {
  return span.toMs === undefined
    ? sql`created_at > ${stamp(span.fromMs)}`
    : sql`(created_at > ${stamp(span.fromMs)} and created_at <= ${stamp(span.toMs)})`;
}

/**
 * Credits the subscription's DEBIT entries took in each named span, in one statement that reads only
 * the `covering` spans (which must contain every named one) through (subscription_id, created_at).
 */
async function sumDebits<K extends string>(
  db: DbOrTx,
  subscriptionId: string,
  spans: Record<K, Span>,
  covering: Span[],
): Promise<Record<K, number>> {
  const names = Object.keys(spans) as K[];
  const columns = names.map((name, i) => sql`coalesce(sum(-amount) filter (where ${within(spans[name])}), 0) as ${sql.raw(`s${i}`)}`);
  const rows = await queryRows<Record<string, string | number>>(
    db,
    sql`select ${sql.join(columns, sql`, `)}
          from credit_ledger
         where subscription_id = ${subscriptionId}::uuid
           and kind = 'DEBIT'
           and (${sql.join(covering.map(within), sql` or `)})`,
  );
  const row = rows[0] ?? {};
  return Object.fromEntries(names.map((name, i) => [name, Number(row[`s${i}`] ?? 0)])) as Record<K, number>;
}
