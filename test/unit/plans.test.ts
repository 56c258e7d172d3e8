/** Plan configuration (PLANS / PLANS_FILE through loadConfig) and period arithmetic. */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/config.js";
import { addCalendarMonths, parsePeriod, periodEnd } from "../../src/plans/period.js";
import { configProblems } from "../helpers/config-problems.js";

const PRO = [{ name: "pro", period: "1mo", allowances: { leads: { allowance: 100, rolloverMax: 20 }, ai: { allowance: 1000 } } }];


describe("plan configuration", () => {
  it("has no plans by default", () => {
    expect(loadConfig({}).plans).toEqual([]);
  });

  it("parses PLANS: allowances sorted by type, rolloverMax 0 by default", () => {
    const [plan] = loadConfig({ PLANS: JSON.stringify(PRO) }).plans;
    expect(plan.name).toBe("pro");
    expect(plan.period).toEqual({ kind: "months", months: 1, text: "1mo" });
    expect(plan.allowances).toEqual([
      { type: "ai", allowance: 1000, rolloverMax: 0 },
      { type: "leads", allowance: 100, rolloverMax: 20 },
    ]);
  });

  it("reads PLANS_FILE", () => {
    const dir = mkdtempSync(join(tmpdir(), "plans-"));
    const file = join(dir, "plans.json");
    writeFileSync(file, JSON.stringify([{ name: "trial", period: "30d", allowances: { ai: { allowance: 50 } } }]));
    const [plan] = loadConfig({ PLANS_FILE: file }).plans;
    expect(plan).toMatchObject({ name: "trial", period: { kind: "duration", ms: 30 * 86_400_000 } });
    expect(configProblems({ PLANS_FILE: join(dir, "missing.json") })[0]).toMatch(/^PLANS_FILE: cannot read/);
  });

  it.each([
    [{ PLANS: "not json" }, /PLANS: not valid JSON/],
    [{ PLANS: JSON.stringify([{ name: "x", period: "fortnight", allowances: {} }]) }, /PLANS\.0\.period/],
    [{ PLANS: JSON.stringify([{ name: "x", period: "500ms", allowances: {} }]) }, /PLANS\.0\.period/],
    [{ PLANS: JSON.stringify([{ name: "x", period: "1mo", allowances: { gold: { allowance: 1 } } }]) }, /PLANS\.0\.allowances\.gold: "gold" is not a credit type: use one of ai, leads, skiptrace/],
    [{ PLANS: JSON.stringify([{ name: "x", period: "1mo", allowances: { ai: { allowance: -1 } } }]) }, /PLANS\.0\.allowances\.ai\.allowance/],
    [{ PLANS: JSON.stringify([...PRO, ...PRO]) }, /defined twice/],
    [{ PLANS: "[]", PLANS_FILE: "/tmp/x.json" }, /not both/],
  ])("refuses %j with a clear message", (env, message) => {
    expect(configProblems(env as Record<string, string>).join("\n")).toMatch(message);
  });
});

describe("plan periods", () => {
  it("parses calendar months and durations", () => {
    expect(parsePeriod("1mo")).toEqual({ kind: "months", months: 1, text: "1mo" });
    expect(parsePeriod("10s")).toEqual({ kind: "duration", ms: 10_000, text: "10s" });
    expect(parsePeriod("0mo")).toBeUndefined();
    expect(parsePeriod("1w")).toBeUndefined();
  });

  it("counts months from the anchor, so the 31st comes back after a short month", () => {
    const anchor = new Date("2026-01-31T10:00:00.000Z");
    const month = parsePeriod("1mo")!;
    expect(periodEnd(anchor, month, 1).toISOString()).toBe("2026-02-28T10:00:00.000Z");
    expect(periodEnd(anchor, month, 2).toISOString()).toBe("2026-03-31T10:00:00.000Z");
    expect(addCalendarMonths(new Date("2024-01-31T00:00:00.000Z"), 1).toISOString()).toBe("2024-02-29T00:00:00.000Z");
    expect(addCalendarMonths(new Date("2026-11-15T00:00:00.000Z"), 3).toISOString()).toBe("2027-02-15T00:00:00.000Z");
  });

  it("adds durations exactly", () => {
    const anchor = new Date("2026-01-01T00:00:00.000Z");
    expect(periodEnd(anchor, parsePeriod("5s")!, 3).toISOString()).toBe("2026-01-01T00:00:15.000Z");
  });
});
