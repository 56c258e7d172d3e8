import { describe, expect, it } from "vitest";
import { BenchUsageError, parseBenchOptions, SCENARIO_NAMES } from "../../bench/options.js";

describe("npm run bench -- --only", () => {
  it("takes any of the scenarios by name, the live-balance one alone included", () => {
    expect(parseBenchOptions(["--only", "metered-live"], {}).only).toEqual(["metered-live"]);
    expect(parseBenchOptions(["--only", " bare-sql , metered "], {}).only).toEqual(["bare-sql", "metered"]);
    expect(parseBenchOptions(["--only", SCENARIO_NAMES.join(",")], {}).only).toEqual([...SCENARIO_NAMES]);
  });

  it("refuses a name it does not know, naming it and the known ones, instead of measuring nothing", () => {
    expect(() => parseBenchOptions(["--only", "metered,live"], {})).toThrow(BenchUsageError);
    expect(() => parseBenchOptions(["--only", "metered,live"], {})).toThrow(/not known: live/);
    expect(() => parseBenchOptions(["--only", "metered,live"], {})).toThrow(/metered-live/);
    expect(() => parseBenchOptions(["--only", ","], {})).toThrow(BenchUsageError);
  });

  it("runs every scenario without --only", () => {
    expect(parseBenchOptions([], {}).only).toBeUndefined();
  });
});
