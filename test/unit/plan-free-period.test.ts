/**
 * A plan that grants nothing has no period (README, docs/grants.md), so it may leave `period` out; a
 * plan that grants something must give one. An outside audit found `[{"name":"free","allowances":{}}]`
 * refused ("PLANS.0.period: … expected string, received undefined"), and `allowance: 1e20` answered
 * with two messages, one of them naming 9007199254740991.
 */
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/config.js";
import { grantsSomething } from "../../src/plans/plan-config.js";
import { configProblems } from "../helpers/config-problems.js";

const plans = (list: unknown[]) => ({ PLANS: JSON.stringify(list) });

describe("a plan's period", () => {
  it.each([
    ["no allowances", {}],
    ["allowances of 0", { ai: { allowance: 0 }, leads: { allowance: 0, rolloverMax: 5 } }],
  ])("may be left out of a plan that grants nothing (%s)", (_label, allowances) => {
    const [plan] = loadConfig(plans([{ name: "free", allowances }])).plans;
    expect(plan.name).toBe("free");
    expect(plan.period).toEqual({ kind: "none", text: "" });
    expect(grantsSomething(plan)).toBe(false);
  });

  it("is still accepted on a plan that grants nothing", () => {
    const [plan] = loadConfig(plans([{ name: "free", period: "1mo", allowances: {} }])).plans;
    expect(plan.period).toEqual({ kind: "months", months: 1, text: "1mo" });
  });

  it("is required of a plan that grants something, with one clear message", () => {
    expect(configProblems(plans([{ name: "pro", allowances: { ai: { allowance: 10 } } }]))).toEqual([
      'PLANS.0.period: plan "pro": period is missing: a plan that grants credits needs one, such as "1mo" or "30d" (only a plan whose allowances are all 0 may leave it out)',
    ]);
  });

  it("is still checked when given on a plan that grants nothing", () => {
    expect(configProblems(plans([{ name: "free", period: "1m", allowances: {} }]))[0]).toMatch(/^PLANS\.0\.period: plan "free": period "1m" would be minutes/);
  });
});

describe("an allowance", () => {
  it.each([
    ["allowance", 1e20],
    ["allowance", 2_000_000_000],
    ["allowance", -1],
    ["allowance", 1.5],
    ["allowance", "5"],
    ["rolloverMax", 1e30],
    ["rolloverMax", -3],
  ])("%s %j: one message naming the range 0 to 1000000000", (key, value) => {
    const problems = configProblems(plans([{ name: "x", period: "1mo", allowances: { ai: { allowance: 1, [key]: value } } }]));
    expect(problems).toEqual([`PLANS.0.allowances.ai.${key}: plan "x": ${key} must be a whole number of credits from 0 to 1000000000, not ${JSON.stringify(value)}`]);
  });

  it("a missing allowance says so", () => {
    expect(configProblems(plans([{ name: "x", period: "1mo", allowances: { ai: { rolloverMax: 1 } } }]))).toEqual([
      'PLANS.0.allowances.ai.allowance: plan "x": allowance is missing: give a whole number of credits from 0 to 1000000000',
    ]);
  });

  it("takes 0 to 1000000000, rolloverMax 0 by default", () => {
    const [plan] = loadConfig(plans([{ name: "x", period: "1mo", allowances: { ai: { allowance: 1_000_000_000 }, leads: { allowance: 0, rolloverMax: 1_000_000_000 } } }])).plans;
    expect(plan.allowances).toEqual([
      { type: "ai", allowance: 1_000_000_000, rolloverMax: 0 },
      { type: "leads", allowance: 0, rolloverMax: 1_000_000_000 },
    ]);
  });
});

describe("a plan without a period on a running server", () => {
  it("is listed with period \"\" and a subscription on it gets no period and no credits", async () => {
    const { adminToken, startTestServer } = await import("../helpers/test-app.js");
    const server = await startTestServer({
      env: {
        PLANS: JSON.stringify([
          { name: "free", allowances: {} },
          // A period given to a plan that grants nothing is still no period (an outside audit: listed as "10s").
          { name: "idle", period: "10s", allowances: { ai: { allowance: 0 } } },
          { name: "pro", period: "1mo", allowances: { ai: { allowance: 10 } } },
        ]),
        RECOVERY_INTERVAL: "300ms",
      },
    });
    try {
      const listed = await server.gql<{ plans: unknown[] }>("{ plans { name period } }");
      expect(listed.body.data?.plans).toEqual([{ name: "free", period: "" }, { name: "idle", period: "" }, { name: "pro", period: "1mo" }]);
      const created = await server.gql<{ createSubscription: { currentPeriodEnd: string | null; balances: { type: string; balance: number }[] } }>(
        'mutation { createSubscription(input: { ownerId: "free-owner", plan: "free" }) { currentPeriodEnd balances { type balance } } }',
        undefined,
        { token: await adminToken("free-admin") },
      );
      expect(created.body.errors).toBeUndefined();
      expect(created.body.data?.createSubscription.currentPeriodEnd).toBeNull();
      expect(created.body.data?.createSubscription.balances.every((b) => b.balance === 0)).toBe(true);
      // A recovery pass (plan renewal included) runs over it without trouble.
      await new Promise((resolve) => setTimeout(resolve, 800));
      expect((await server.gql("{ plans { name } }")).body.errors).toBeUndefined();
    } finally {
      await server.close();
    }
  }, 60_000);
});
