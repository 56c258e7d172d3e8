/** Plan configuration (PLANS / PLANS_FILE through loadConfig) and period arithmetic. */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/config.js";
import { addCalendarMonths, parsePeriod, periodEnd } from "../../src/plans/period.js";
import { grantsSomething } from "../../src/plans/plan-config.js";
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
    [{ PLANS: JSON.stringify([{ name: "x", period: "1mo", allowances: { gold: { allowance: 1 } } }]) }, /PLANS\.0\.allowances\.gold: plan "x": "gold" is not a credit type: use one of ai, leads, skiptrace/],
    [{ PLANS: JSON.stringify([{ name: "x", period: "1mo", allowances: { ai: { allowance: -1 } } }]) }, /PLANS\.0\.allowances\.ai\.allowance/],
    [{ PLANS: JSON.stringify([...PRO, ...PRO]) }, /defined twice/],
    [{ PLANS: "[]", PLANS_FILE: "/tmp/x.json" }, /not both/],
  ])("refuses %j with a clear message", (env, message) => {
    expect(configProblems(env as Record<string, string>).join("\n")).toMatch(message);
  });

  const plan = (fields: Record<string, unknown>) => ({ PLANS: JSON.stringify([{ name: "x", period: "1mo", allowances: { ai: { allowance: 1 } }, ...fields }]) });

  it.each([
    // Past what a date can hold: createSubscription used to answer 500 (RangeError: Invalid time value).
    ["999999999999d", /^PLANS\.0\.period: plan "x": period "999999999999d" is longer than 100 years \(at most "1200mo" or "36500d"\)$/],
    ["36501d", /^PLANS\.0\.period: plan "x": period "36501d" is longer than 100 years/],
    ["876001h", /is longer than 100 years/],
    ["1201mo", /^PLANS\.0\.period: plan "x": period "1201mo" is longer than 100 years/],
  ])("refuses the period %s, longer than 100 years, at start", (period, message) => {
    const problems = configProblems(plan({ period }));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(message);
  });

  it("accepts periods of up to 100 years, whose ends dates can hold", () => {
    for (const text of ["36500d", "876000h", "1200mo"]) {
      const [defined] = loadConfig(plan({ period: text })).plans;
      if (!grantsSomething(defined)) throw new Error("the plan grants something, so it has a period");
      expect(Number.isFinite(periodEnd(new Date(), defined.period, 3).getTime())).toBe(true);
    }
  });

  it("refuses a bare m unit (minutes, not months) with a message that says what to write", () => {
    expect(configProblems(plan({ period: "1m" }))).toEqual([
      'PLANS.0.period: plan "x": period "1m" would be minutes: write "1mo" for a calendar month, or the minutes in seconds or hours (such as "60s")',
    ]);
    expect(configProblems(plan({ period: "90m" }))[0]).toMatch(/period "90m" would be minutes: write "90mo" for calendar months/);
  });

  it.each(["1.5d", " 1d", "1d ", "1 d", "1 mo", "0.5mo", "1e3s", "+1d", "1D"])("refuses the period %j: a whole number and its unit, nothing else", (period) => {
    const problems = configProblems(plan({ period }));
    expect(problems).toEqual([
      `PLANS.0.period: plan "x": period ${JSON.stringify(period)} must be a whole number of calendar months ("1mo") or of days, hours, seconds or milliseconds of 1s or more ("30d", "24h", "10s"), without spaces`,
    ]);
  });

  it.each([
    [{ extra: 1 }, 'PLANS.0.extra: plan "x": unknown key "extra" (a plan has name, period, allowances)'],
    [{ periode: "1mo" }, 'PLANS.0.periode: plan "x": unknown key "periode" (a plan has name, period, allowances): did you mean period?'],
    [{ allowances: { ai: { allowance: 1, bogus: 2 } } }, 'PLANS.0.allowances.ai.bogus: plan "x": unknown key "bogus" in the allowance of ai (an allowance has allowance, rolloverMax)'],
    [
      { allowances: { ai: { allowance: 1, rollovermax: 5 } } },
      'PLANS.0.allowances.ai.rollovermax: plan "x": unknown key "rollovermax" in the allowance of ai (an allowance has allowance, rolloverMax): did you mean rolloverMax?',
    ],
    [
      { allowances: { ai: { allowence: 1 } } },
      'PLANS.0.allowances.ai.allowence: plan "x": unknown key "allowence" in the allowance of ai (an allowance has allowance, rolloverMax): did you mean allowance?',
    ],
  ])("refuses the unknown key in %j, naming the plan and the key", (fields, message) => {
    expect(configProblems(plan(fields))).toContain(message);
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
