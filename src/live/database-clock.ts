/**
 * The database's time as far as this instance can tell. The hub spaces a balance's events by the
 * time of their entries (`createdAt`, stamped by the database), so it needs "now" on that
 * clock, while its own is Date.now(): the two machines' clocks may differ. Each reading is a
 * database time stamp together with a local time no earlier than the moment it was taken (a change
 * that has just arrived, stamped when its entry was made; the relay's query, stamped while it ran),
 * so `local - stamp` is the difference of the clocks plus some delay, never less than the difference.
 * The smallest recent one is the best bound: subtracted from Date.now() it gives a database time that
 * is never ahead of the real one, so events are never spaced closer than asked, and lags it only by
 * the fastest reading's delay (the relay's: well under a millisecond on an idle database). Readings
 * expire after two windows, so a clock that was stepped is followed.
 */
export class DatabaseClock {
  private currentMin = Number.POSITIVE_INFINITY;
  private previousMin = Number.POSITIVE_INFINITY;
  private windowStart: number;
  /** Used while no reading is recent: the last difference known (0 before any: the clocks agree). */
  private lastOffset = 0;

  constructor(
    private readonly localNow: () => number = () => Date.now(),
    private readonly windowMs = 10_000,
  ) {
    this.windowStart = localNow();
  }

  /** The database's clock read `databaseMs` at `localMs` (this instance's time) or before. */
  observe(databaseMs: number, localMs = this.localNow()): void {
    this.rotate();
    // Date.now() drops the fraction of its millisecond: the moment it stands for may be up to 1 ms later.
    const offset = localMs + 1 - databaseMs;
    if (offset < this.currentMin) this.currentMin = offset;
  }

  /** The database's time now, at the latest. */
  now(): number {
    this.rotate();
    const offset = Math.min(this.currentMin, this.previousMin);
    if (Number.isFinite(offset)) this.lastOffset = offset;
    return this.localNow() - this.lastOffset;
  }

  private rotate(): void {
    const now = this.localNow();
    if (now - this.windowStart < this.windowMs) return;
    // Two windows apart or more: the previous window's readings are stale too.
    this.previousMin = now - this.windowStart < 2 * this.windowMs ? this.currentMin : Number.POSITIVE_INFINITY;
    this.currentMin = Number.POSITIVE_INFINITY;
    this.windowStart = now;
  }
}
