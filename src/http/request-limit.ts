/**
 * The per-caller request limit (REQUEST_LIMIT, DESIGN.md "Rate limits"): every GraphQL request
 * counts, metered or not, and a caller over the limit is refused (429) before its body is read or
 * parsed, so a flood costs the server a map lookup per request instead of a parse.
 *
 * A sliding-window counter per caller (Cloudflare's approximation of a sliding log): the count of
 * the current fixed window plus the previous window's count weighted by how much of it still
 * overlaps the sliding window. O(1) per request and no allocation for a known caller, unlike the
 * exact timestamp log @rateLimit uses (up to `max` timestamps per caller, 1,200 by default). Within
 * a caller's first window the count is exact: the (max+1)-th request is the first refused.
 *
 * Kept in process, per instance, on purpose: its job is to protect this instance's event loop, and a
 * Redis round trip per request would cost every request what it saves on a flood.
 */
export interface RequestLimitSpec {
  max: number;
  windowMs: number;
}

export type RequestLimitVerdict = { allowed: true } | { allowed: false; retryAfterMs: number };

interface CallerWindow {
  /** Start of the current fixed window (a multiple of windowMs). */
  start: number;
  current: number;
  previous: number;
}

const ALLOWED: RequestLimitVerdict = { allowed: true };
/** Callers idle for two windows are forgotten every this many requests (or at least once per `size` requests). */
const SWEEP_EVERY = 10_000;

export class RequestLimiter {
  private readonly callers = new Map<string, CallerWindow>();
  private untilSweep = SWEEP_EVERY;

  constructor(
    private readonly spec: RequestLimitSpec,
    private readonly now: () => number = Date.now,
  ) {}

  /** Counts one request of `caller` when it is within the limit; refuses it (uncounted) when not. */
  take(caller: string): RequestLimitVerdict {
    const now = this.now();
    const { max, windowMs } = this.spec;
    const start = now - (now % windowMs);
    if (--this.untilSweep <= 0) this.sweep(start);
    let window = this.callers.get(caller);
    if (window === undefined) {
      window = { start, current: 0, previous: 0 };
      this.callers.set(caller, window);
    } else if (window.start !== start) {
      window.previous = window.start === start - windowMs ? window.current : 0;
      window.current = 0;
      window.start = start;
    }
    const overlap = 1 - (now - start) / windowMs;
    const estimate = window.previous * overlap + window.current;
    if (estimate + 1 > max) return { allowed: false, retryAfterMs: this.retryAfterMs(window, now) };
    window.current++;
    return ALLOWED;
  }

  /** Callers currently remembered (for tests of the sweep). */
  get size(): number {
    return this.callers.size;
  }

  /**
   * When one more request fits, so that a client which waits exactly this long is admitted: either
   * later in the current window, once enough of the previous window has slid out, or in the next
   * window, where this window's count becomes the previous one and slides out in turn.
   */
  private retryAfterMs(window: CallerWindow, now: number): number {
    const { max, windowMs } = this.spec;
    const windowEnd = window.start + windowMs;
    let fitsAt: number;
    if (window.current + 1 <= max && window.previous > 0) {
      // previous × (1 − (t − start)/W) + current + 1 ≤ max  ⇔  t ≥ start + W × (1 − (max − current − 1)/previous);
      // at the window's end at the latest, where the count becomes current (≤ max − 1) + 1.
      fitsAt = Math.min(windowEnd, window.start + windowMs * (1 - (max - window.current - 1) / window.previous));
    } else {
      // This window alone is full. In the next one: current × (1 − (t − end)/W) + 1 ≤ max
      // ⇔ t ≥ end + W × (1 − (max − 1)/current). Waiting only for the window's end, as this did
      // before, was refused again for W/max more (3 s of 20/1m): the full window still counted whole.
      fitsAt = windowEnd + windowMs * (1 - (max - 1) / window.current);
    }
    return Math.max(1, Math.ceil(fitsAt - now));
  }

  private sweep(currentStart: number): void {
    this.untilSweep = Math.max(SWEEP_EVERY, this.callers.size);
    const oldestKept = currentStart - this.spec.windowMs;
    for (const [caller, window] of this.callers) {
      if (window.start < oldestKept) this.callers.delete(caller);
    }
  }
}
