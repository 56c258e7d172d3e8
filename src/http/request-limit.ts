/**
 * The per-caller request limit (REQUEST_LIMIT, DESIGN.md "Rate limits"): every GraphQL request
 * counts, metered or not, and a caller over the limit is refused (429) before its body is read or
 * parsed, so a flood costs the server a map lookup per request instead of a parse.
 *
 * A bucketed sliding window that never admits more than `max` in any window: each caller counts its
 * requests in BUCKETS sub-windows of windowMs/BUCKETS (1 s for 1200/1m), and a request counts for as
 * long as its bucket overlaps the sliding window (now − W, now], i.e. until bucket end + W. So it
 * counts for at least W (no window of W holds more than `max` admitted requests) and for less than
 * W + W/BUCKETS (a caller that waited that long after a burst has its whole allowance back).
 *
 * Why buckets: an exact log (as @rateLimit keeps) costs `max` timestamps per caller, 1,200 by default,
 * times every address of a flood. The sliding-window counter this replaced (the previous fixed
 * window's count weighted by its overlap) cost less still, but it is an estimate: an outside audit
 * saw 31 admitted in 6 s for 20/10s (55% over), and a caller that waited a whole window refused.
 * Here a caller costs a small ring of counts and a running sum: O(1) per request, no allocation for
 * a known caller.
 *
 * Kept in process, per instance, on purpose: its job is to protect this instance's event loop, and a
 * Redis round trip per request would cost every request what it saves on a flood.
 */
export interface RequestLimitSpec {
  max: number;
  windowMs: number;
}

export type RequestLimitVerdict = { allowed: true } | { allowed: false; retryAfterMs: number };

/** Sub-windows per window: a request counts for between W and W + W/BUCKETS. */
const BUCKETS = 60;
/** Buckets that can overlap the sliding window: the current one and the BUCKETS before it. */
const LIVE_BUCKETS = BUCKETS + 1;

type Counts = Uint8Array | Uint16Array | Uint32Array | Float64Array;

interface CallerBuckets {
  /** Requests per bucket, bucket i at counts[slotOf(i)]. */
  counts: Counts;
  /** Sum of counts: the requests that count now. */
  sum: number;
  /** The newest bucket this caller has counted in; the ring holds newest − BUCKETS … newest. */
  newest: number;
}

const ALLOWED: RequestLimitVerdict = { allowed: true };
/** Callers none of whose buckets still count (idle for W + W/60) are forgotten every this many requests (or at least once per `size` requests). */
const SWEEP_EVERY = 10_000;

/** Where bucket i lives in a caller's ring; numbers below 0 too (the buckets before a clock that starts near 0). */
function slotOf(bucket: number): number {
  return ((bucket % LIVE_BUCKETS) + LIVE_BUCKETS) % LIVE_BUCKETS;
}

/** The narrowest counts that can hold `max` in one bucket: 61 bytes a caller for a limit of up to 255. */
function countsFor(max: number): Counts {
  if (max <= 0xff) return new Uint8Array(LIVE_BUCKETS);
  if (max <= 0xffff) return new Uint16Array(LIVE_BUCKETS);
  if (max <= 0xffff_ffff) return new Uint32Array(LIVE_BUCKETS);
  return new Float64Array(LIVE_BUCKETS);
}

export class RequestLimiter {
  private readonly callers = new Map<string, CallerBuckets>();
  private untilSweep = SWEEP_EVERY;

  constructor(
    private readonly spec: RequestLimitSpec,
    private readonly now: () => number = Date.now,
  ) {}

  /** Counts one request of `caller` when it is within the limit; refuses it (uncounted) when not. */
  take(caller: string): RequestLimitVerdict {
    const now = this.now();
    const current = this.bucketAt(now);
    if (--this.untilSweep <= 0) this.sweep(current);
    let buckets = this.callers.get(caller);
    if (buckets === undefined) {
      buckets = { counts: countsFor(this.spec.max), sum: 0, newest: current };
      this.callers.set(caller, buckets);
    } else {
      this.slide(buckets, current);
    }
    if (buckets.sum + 1 > this.spec.max) return { allowed: false, retryAfterMs: this.retryAfterMs(buckets, now) };
    buckets.counts[slotOf(buckets.newest)]++;
    buckets.sum++;
    return ALLOWED;
  }

  /** Callers currently remembered (for tests of the sweep). */
  get size(): number {
    return this.callers.size;
  }

  /** The bucket holding instant `t`: bucket i spans [i·W/BUCKETS, (i+1)·W/BUCKETS). */
  private bucketAt(t: number): number {
    return Math.floor((t * BUCKETS) / this.spec.windowMs);
  }

  /**
   * The first instant bucket i no longer overlaps the sliding window: its end + W, rounded up to a
   * whole millisecond (a bucket is W/60, 166.7 ms for a 10 s window).
   */
  private leavesAt(bucket: number): number {
    return Math.ceil(((bucket + LIVE_BUCKETS) * this.spec.windowMs) / BUCKETS);
  }

  /** Moves the caller's ring to bucket `current`, dropping the buckets that left the window. */
  private slide(buckets: CallerBuckets, current: number): void {
    // A clock that steps back counts in the newest bucket: later, so never admitting more.
    if (current <= buckets.newest) return;
    if (current - buckets.newest >= LIVE_BUCKETS) {
      buckets.counts.fill(0);
      buckets.sum = 0;
    } else {
      for (let bucket = buckets.newest + 1; bucket <= current; bucket++) {
        const slot = slotOf(bucket);
        buckets.sum -= buckets.counts[slot];
        buckets.counts[slot] = 0;
      }
    }
    buckets.newest = current;
  }

  /**
   * When one more request fits, so that a client which waits exactly this long is admitted and one
   * that waits a millisecond less is not: when the oldest buckets whose leaving brings the sum to
   * max − 1 have left (refused requests are not counted, so nothing else changes meanwhile).
   */
  private retryAfterMs(buckets: CallerBuckets, now: number): number {
    let remaining = buckets.sum;
    for (let bucket = buckets.newest - BUCKETS; bucket <= buckets.newest; bucket++) {
      remaining -= buckets.counts[slotOf(bucket)];
      if (remaining + 1 <= this.spec.max) return Math.max(1, this.leavesAt(bucket) - now);
    }
    return Math.max(1, this.leavesAt(buckets.newest) - now); // unreachable while max ≥ 1
  }

  private sweep(current: number): void {
    this.untilSweep = Math.max(SWEEP_EVERY, this.callers.size);
    for (const [caller, buckets] of this.callers) {
      if (buckets.newest < current - BUCKETS) this.callers.delete(caller);
    }
  }
}
