/**
 * The relay's schedule: a tick that moved a full batch of outbox rows runs again at once, any other
 * after the interval; every tick's reading of the database's clock goes to the clock the hub spaces
 * events by. The SQL itself runs on
 * both databases in test/db/notification-relay.test.ts.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { DbOrTx } from "../../src/db/database.js";
import { DatabaseClock } from "../../src/live/database-clock.js";
import { startNotificationRelay } from "../../src/live/notification-relay.js";
import { createLogger } from "../../src/observability/logger.js";

const T0 = 1_800_000_000_000;

/** A database whose relay statement moves these many rows, one answer per call; its clock runs `skewMs` ahead. */
function scriptedDatabase(moved: number[], skewMs: number): { db: DbOrTx; calls: number[] } {
  const calls: number[] = [];
  const db = {
    async execute() {
      calls.push(Date.now());
      return { rows: [{ n: String(moved[calls.length - 1] ?? 0), database_ms: Date.now() + skewMs }] };
    },
  } as unknown as DbOrTx;
  return { db, calls };
}

describe("startNotificationRelay", () => {
  beforeEach(() => vi.useFakeTimers({ now: T0 }));
  afterEach(() => vi.useRealTimers());

  it("runs again at once after a full batch, and after the interval otherwise", async () => {
    const { db, calls } = scriptedDatabase([200, 200, 3, 0], 0);
    const relay = startNotificationRelay({ db, intervalMs: 25, logger: createLogger("silent") });
    await vi.advanceTimersByTimeAsync(100);
    await relay.stop();
    // Again at once (a timer of 0: the next turn of the event loop) after two full batches (200 rows);
    // after 3 rows, and after none, the interval.
    const gaps = calls.slice(1).map((t, i) => t - calls[i]);
    expect(gaps[0]).toBeLessThanOrEqual(1);
    expect(gaps[1]).toBeLessThanOrEqual(1);
    expect(gaps.slice(2, 4)).toEqual([25, 25]);
  });

  it("gives every tick's reading of the database's clock to the hub's clock", async () => {
    const { db } = scriptedDatabase([0], 3_000);
    const clock = new DatabaseClock();
    const relay = startNotificationRelay({ db, intervalMs: 25, logger: createLogger("silent"), clock });
    await vi.advanceTimersByTimeAsync(0);
    await relay.stop();
    // The database runs 3 s ahead; the estimate trails it by at most Date.now's lost fraction.
    expect(Date.now() + 3_000 - clock.now()).toBe(1);
  });
});
