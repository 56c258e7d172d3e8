/**
 * The soak's verdict reads what the server keeps: its memory right after full collections at each end
 * of the soak, the V8 heap's free space left out. Not where the sawtooth of a V8 heap happens to stand
 * at the start and the end, nor the lowest samples of each half, which wander with whatever was in
 * flight at the last collection.
 */
import { describe, expect, it } from "vitest";
import { soakReport, type CollectedMemory } from "../../bench/report.js";

/** One sample a second: the heap fills by `step` MB a second from `floor`, and a collection drops it back every `period` seconds. */
function sawtooth(seconds: number, floor: (t: number) => number, step = 5, period = 12): number[] {
  return Array.from({ length: seconds + 2 }, (_, t) => floor(t) + step * (t % period));
}

/** A reading after full collections: RSS, and the V8 heap in use and committed. */
const memory = (rssMb: number, heapUsedMb = 35, heapTotalMb = 46): CollectedMemory => ({ rssMb, heapUsedMb, heapTotalMb });

describe("soak report", () => {
  it("memory kept the same across the soak is not growing, wherever the saw stands at the end", () => {
    // As in a real run: collections every 10 s, then a 22 s climb with none, ending 105 MB up.
    const samples = [...sawtooth(39, () => 175, 5, 10).slice(0, 40), ...Array.from({ length: 22 }, (_, t) => 175 + 5 * t)];
    const report = soakReport(samples, 60, 10, [memory(150.2), memory(151)]);
    expect(report.endMb - report.startMb).toBeGreaterThan(40);
    expect(report.floorsMb).toEqual([175, 175]);
    expect(report).toMatchObject({ collectedRssMb: [150.2, 151], keptMb: [139.2, 140], growthMb: 0.8, growing: false, warmupSeconds: 10 });
  });

  it("floors that wander between collections are not growth when the collections give the memory back", () => {
    // The last floor-based verdict: the second half's lowest sample 11.8 MB above the first half's.
    const samples = sawtooth(60, (t) => (t < 31 ? 197.3 : 209.1), 13, 8);
    const report = soakReport(samples, 60, 10, [memory(152.5), memory(150.9)]);
    expect(report.floorsMb).toEqual([197.3, 209.1]);
    expect(report).toMatchObject({ growthMb: -1.6, growing: false });
  });

  it("a young generation V8 keeps committed after one collection and not the other is not growth", () => {
    // Measured: RSS 148.4 then 183.2 MB, the heap in use 34.8 both times, committed 45.5 then 77.5 MB.
    const report = soakReport([180, 185], 60, 10, [memory(148.4, 34.8, 45.5), memory(183.2, 34.8, 77.5)]);
    expect(report.collectedRssMb).toEqual([148.4, 183.2]);
    expect(report).toMatchObject({ keptMb: [137.7, 140.5], growthMb: 2.8, growing: false });
  });

  it("memory kept across collections is growing, even if the last sample is low", () => {
    // 1 MB a second kept for good, as JavaScript objects: the heap in use grows with it.
    const samples = sawtooth(60, (t) => 175 + t, 5, 12);
    const report = soakReport(samples, 60, 10, [memory(150), memory(210, 95, 106)]);
    expect(report.growthMb).toBe(60);
    expect(report.collectedHeapMb).toEqual([35, 95]);
    expect(report.growing).toBe(true);
  });

  it("native memory kept (RSS outside the heap) is growing too", () => {
    const report = soakReport([150, 175], 60, 10, [memory(150), memory(175)]);
    expect(report).toMatchObject({ collectedHeapMb: [35, 35], growthMb: 25, growing: true });
  });

  it("growth is judged against 10 MB or 5% of the memory kept, whichever is larger", () => {
    // 139 MB kept: 10 MB is the larger; 389 MB kept: 5% (19.45 MB) is.
    expect(soakReport([150, 151], 60, 10, [memory(150), memory(159.9)]).growing).toBe(false);
    expect(soakReport([150, 151], 60, 10, [memory(150), memory(160.1)]).growing).toBe(true);
    expect(soakReport([400, 401], 60, 10, [memory(400), memory(419)]).growing).toBe(false);
    expect(soakReport([400, 401], 60, 10, [memory(400), memory(420)]).growing).toBe(true);
  });
});
