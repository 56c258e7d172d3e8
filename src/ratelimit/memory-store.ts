/**
 * The in-process rate-limit store (the default, without REDIS_URL). Exact under concurrency
 * because `hit` checks and records synchronously: no other call can run between the count and the
 * write in a single JavaScript thread. It serves one instance only; several instances need Redis.
 */
import { retryAfterMs, type RateLimitHit, type RateLimitStore, type RateLimitVerdict } from "./rate-limit-store.js";

interface CallLog {
  /** Timestamps of the calls that ran, oldest first; never more than the rule's max. */
  timestamps: number[];
  windowMs: number;
}

/** Every this many hits, logs whose calls have all left their window are dropped, so idle callers cost no memory. */
const SWEEP_EVERY_HITS = 1_000;

export class MemoryRateLimitStore implements RateLimitStore {
  readonly kind = "memory" as const;
  private readonly logs = new Map<string, CallLog>();
  private hitsSinceSweep = 0;

  async hit(hit: RateLimitHit): Promise<RateLimitVerdict> {
    return this.hitNow(hit);
  }

  /** The check-and-record itself, synchronous on purpose (see above). */
  hitNow(hit: RateLimitHit): RateLimitVerdict {
    if (++this.hitsSinceSweep >= SWEEP_EVERY_HITS) this.sweep(hit.now);
    const log = this.logs.get(hit.key);
    // graphql-rate-limit keeps a timestamp t while t + window > now.
    const alive = log ? log.timestamps.filter((t) => t + hit.windowMs > hit.now) : [];
    if (alive.length + hit.cost > hit.max) {
      if (log) log.timestamps = alive;
      return { allowed: false, used: alive.length, retryAfterMs: retryAfterMs(alive, hit) };
    }
    for (let i = 0; i < hit.cost; i++) alive.push(hit.now);
    const recorded: CallLog = { timestamps: alive, windowMs: hit.windowMs };
    this.logs.set(hit.key, recorded);
    return { allowed: true, used: alive.length, release: async () => this.release(hit.key, hit.now, hit.cost) };
  }

  /** Removes `cost` records made at `now` (records of one instant are interchangeable). */
  private release(key: string, now: number, cost: number): void {
    const log = this.logs.get(key);
    if (!log) return;
    let left = cost;
    log.timestamps = log.timestamps.filter((t) => !(t === now && left-- > 0));
  }

  /** Number of counters held (for tests of the sweep). */
  get size(): number {
    return this.logs.size;
  }

  private sweep(now: number): void {
    this.hitsSinceSweep = 0;
    for (const [key, log] of this.logs) {
      const newest = log.timestamps[log.timestamps.length - 1];
      if (newest === undefined || newest + log.windowMs <= now) this.logs.delete(key);
    }
  }

  async close(): Promise<void> {
    this.logs.clear();
  }
}
