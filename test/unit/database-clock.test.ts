/**
 * The database's clock as the hub estimates it: from readings (a database time stamp and a local
 * time no earlier than it was taken) it is never ahead of the real one, trails it only by the
 * fastest reading's delay, and follows a clock that was stepped once old readings expire.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { DatabaseClock } from "../../src/live/database-clock.js";

describe("DatabaseClock", () => {
  let local = 1_000_000;
  beforeEach(() => {
    local = 1_000_000;
  });
  const clock = (windowMs = 10_000) => new DatabaseClock(() => local, windowMs);

  it("takes the clocks to agree before any reading", () => {
    expect(clock().now()).toBe(local);
  });

  it("is never ahead of the database, and trails it by the fastest reading's delay (plus Date.now's lost fraction)", () => {
    const c = clock();
    // The database's clock runs 2 s ahead of ours; readings arrive 40, 3 and 25 ms after they were taken.
    const skew = 2_000;
    for (const delay of [40, 3, 25]) c.observe(local + skew - delay, local);
    const trueDatabaseNow = local + skew;
    expect(c.now()).toBeLessThanOrEqual(trueDatabaseNow);
    expect(trueDatabaseNow - c.now()).toBe(3 + 1);
    local += 500;
    expect(local + skew - c.now()).toBe(4);
  });

  it("follows a clock that was stepped once the old readings have expired", () => {
    const c = clock(1_000);
    c.observe(local - 1, local);
    expect(c.now()).toBe(local - 2);
    // The database's clock is stepped back by 10 s: its readings now look 10 s late, and the old,
    // smaller offset still rules until two windows have passed without it.
    local += 1_000;
    c.observe(local - 10_001, local);
    expect(c.now()).toBe(local - 2);
    local += 1_000;
    c.observe(local - 10_001, local);
    expect(c.now()).toBe(local - 10_002);
  });

  it("keeps the last offset known while no reading is recent", () => {
    const c = clock(1_000);
    c.observe(local + 499, local);
    expect(c.now()).toBe(local + 498);
    local += 60_000;
    expect(c.now()).toBe(local + 498);
  });
});
