/**
 * The soak's verdict reads the RSS floor (what survives a collection), not where the sawtooth of a
 * V8 heap happens to stand at the start and the end.
 */
import { describe, expect, it } from "vitest";
import { soakReport } from "../../bench/report.js";

/** One sample a second: the heap fills by `step` MB a second from `floor`, and a collection drops it back every `period` seconds. */
function sawtooth(seconds: number, floor: (t: number) => number, step = 5, period = 12): number[] {
  return Array.from({ length: seconds + 2 }, (_, t) => floor(t) + step * (t % period));
}

describe("soak report", () => {
  it("a steady floor is not growing, wherever the saw stands at the end", () => {
    // As in a real run: collections every 10 s, then a 22 s climb with none, ending 105 MB up.
    const samples = [...sawtooth(39, () => 175, 5, 10).slice(0, 40), ...Array.from({ length: 22 }, (_, t) => 175 + 5 * t)];
    const report = soakReport(samples, 60);
    expect(report.endMb - report.startMb).toBeGreaterThan(40);
    expect(report.floorsMb).toEqual([175, 175]);
    expect(report.growthMb).toBe(0);
    expect(report.growing).toBe(false);
  });

  it("a floor that rises (memory kept across collections) is growing, even if the last sample is low", () => {
    // 1 MB a second kept for good: the floor climbs 30 MB from one half to the other.
    const samples = sawtooth(60, (t) => 175 + t, 5, 12);
    const report = soakReport(samples, 60);
    expect(report.growthMb).toBeGreaterThanOrEqual(30);
    expect(report.growing).toBe(true);
  });

  it("a floor that moves by a few MB is noise, not growth", () => {
    const samples = sawtooth(60, (t) => (t < 31 ? 172.4 : 175), 5, 12);
    expect(soakReport(samples, 60)).toMatchObject({ floorsMb: [172.4, 175], growthMb: 2.6, growing: false });
  });
});
