/**
 * The in-process rate-limit store (the default, without REDIS_URL). Exact under concurrency
 * because `hit` checks and records synchronously: no other call can run between the count and the
 * write in a single JavaScript thread. It serves one instance only; several instances need Redis.
 */
import { retryAfterMs, type RateLimitHit, type RateLimitStore, type RateLimitVerdict } from "./rate-limit-store.js";

/**
 * The timestamps of one counter's calls, kept in ascending order so the ones still in the window are
 * always a suffix: forgetting the expired ones moves a start index instead of copying the log, and a
 * hit costs the same whether the window holds ten calls or ten thousand (a copy per hit made a hot
 * caller with a generous limit pay for every call still in its window).
 */
class CallLog {
  private timestamps: number[] = [];
  /** Index of the oldest timestamp still counted; the slots before it are spent. */
  private start = 0;

  constructor(readonly windowMs: number) {}

  /** Calls still in the window at `now` (graphql-rate-limit keeps a timestamp t while t + window > now). */
  countAt(now: number): number {
    const { timestamps } = this;
    while (this.start < timestamps.length && timestamps[this.start] + this.windowMs <= now) this.start++;
    // Spent slots are dropped once they are the larger half, so the copy is paid once per many hits.
    if (this.start > 64 && this.start * 2 > timestamps.length) {
      this.timestamps = timestamps.slice(this.start);
      this.start = 0;
    }
    return this.timestamps.length - this.start;
  }

  /** The counted timestamps, oldest first (a copy: only refusals ask for it). */
  alive(): number[] {
    return this.timestamps.slice(this.start);
  }

  get newest(): number | undefined {
    return this.start < this.timestamps.length ? this.timestamps[this.timestamps.length - 1] : undefined;
  }

  /** Records `cost` calls at `now`, in order even if the clock stepped back (then it is not the newest). */
  record(now: number, cost: number): void {
    const { timestamps } = this;
    let at = timestamps.length;
    while (at > this.start && timestamps[at - 1] > now) at--;
    const later = at === timestamps.length ? [] : timestamps.splice(at);
    for (let i = 0; i < cost; i++) timestamps.push(now);
    for (const t of later) timestamps.push(t);
  }

  /** Removes `cost` records made at `now` (records of one instant are interchangeable), searching from the newest. */
  remove(now: number, cost: number): void {
    const { timestamps } = this;
    let left = cost;
    for (let i = timestamps.length - 1; i >= this.start && left > 0; i--) {
      if (timestamps[i] === now) {
        timestamps.splice(i, 1);
        left--;
      }
    }
  }
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
    const used = log ? log.countAt(hit.now) : 0;
    if (used + hit.cost > hit.max) {
      return { allowed: false, used, retryAfterMs: retryAfterMs(log ? log.alive() : [], hit) };
    }
    const recorded = log ?? new CallLog(hit.windowMs);
    recorded.record(hit.now, hit.cost);
    if (!log) this.logs.set(hit.key, recorded);
    return { allowed: true, used: used + hit.cost, release: async () => this.release(hit.key, hit.now, hit.cost) };
  }

  private release(key: string, now: number, cost: number): void {
    this.logs.get(key)?.remove(now, cost);
  }

  /** Number of counters held (for tests of the sweep). */
  get size(): number {
    return this.logs.size;
  }

  private sweep(now: number): void {
    this.hitsSinceSweep = 0;
    for (const [key, log] of this.logs) {
      const newest = log.newest;
      if (newest === undefined || newest + log.windowMs <= now) this.logs.delete(key);
    }
  }

  async close(): Promise<void> {
    this.logs.clear();
  }
}
