import { describe, expect, it } from "vitest";
import { ESTIMATORS } from "../../src/credits/estimators/registry.js";
import { METERS, normalizeActual } from "../../src/credits/meters/registry.js";
import { settledCost } from "../../src/credits/charge-phases.js";

function meter(name: string) {
  const found = METERS.get(name);
  if (!found) throw new Error(`no meter ${name}`);
  return found;
}

/** Arguments validated as the charge path validates them (the estimator of the same name). */
function validArgs(estimator: string, input: Record<string, unknown>): unknown {
  const parsed = ESTIMATORS.get(estimator)!.args.safeParse({ subscriptionId: "sub-1", input });
  if (!parsed.success) throw parsed.error;
  return parsed.data;
}

describe("meters (DESIGN.md price table)", () => {
  it("registers ai, leads, mls and skiptrace (and any added since)", () => {
    expect([...METERS.keys()]).toEqual(expect.arrayContaining(["ai", "leads", "mls", "skiptrace"]));
  });

  it("ai: ceil((ceil(len(prompt)/4) + tokensUsed) / 1000), ×5 on LARGE", () => {
    const small = validArgs("ai", { prompt: "x".repeat(400), maxTokens: 2000 });
    expect(meter("ai").measure(small, { tokensUsed: 180 })).toBe(1); // (100 + 180) / 1000 → 1
    expect(meter("ai").measure(small, { tokensUsed: 901 })).toBe(2); // 1001 → 2
    const large = validArgs("ai", { prompt: "x".repeat(400), maxTokens: 2000, model: "LARGE" });
    expect(meter("ai").measure(large, { tokensUsed: 180 })).toBe(5);
    // With every requested token used, the meter says what the estimator held.
    expect(meter("ai").measure(small, { tokensUsed: 2000 })).toBe(ESTIMATORS.get("ai")!.estimate(small));
  });

  it("leads: one credit per lead found", () => {
    expect(meter("leads").measure({}, { leads: new Array(12).fill({}) })).toBe(12);
    expect(meter("leads").measure({}, { leads: [] })).toBe(0);
  });

  it("mls: ceil(len(listings)/25), ×2 with includeHistory", () => {
    const plain = validArgs("mls", { area: "Boise", limit: 100 });
    const history = validArgs("mls", { area: "Boise", limit: 100, includeHistory: true });
    expect(meter("mls").measure(plain, { listings: new Array(26).fill({}) })).toBe(2);
    expect(meter("mls").measure(history, { listings: new Array(26).fill({}) })).toBe(4);
    expect(meter("mls").measure(plain, { listings: [] })).toBe(0);
  });

  it("skiptrace: one credit per record that matched", () => {
    expect(meter("skiptrace").measure({}, { matches: [{}, {}] })).toBe(2);
  });

  it("normalizeActual rounds up and refuses what is not a number of credits", () => {
    expect(normalizeActual(2.1)).toBe(3);
    expect(normalizeActual(0)).toBe(0);
    expect(() => normalizeActual(Number.NaN)).toThrow(/not a finite number/);
    expect(() => normalizeActual(-1)).toThrow(/not a finite number/);
    expect(() => normalizeActual(2 ** 60)).toThrow(/too large/);
  });

  it("the spending rule: max(1, min(actual, held)), never above the hold", () => {
    expect(settledCost(3, 1)).toBe(1);
    expect(settledCost(3, 0)).toBe(1);
    expect(settledCost(3, 3)).toBe(3);
    expect(settledCost(3, 7)).toBe(3);
    expect(settledCost(0, 5)).toBe(0);
  });
});
