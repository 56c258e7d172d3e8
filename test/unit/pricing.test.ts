import { z } from "zod";
import { describe, expect, it } from "vitest";
import { priceMeteredCall, validateMeteredArgs } from "../../src/credits/pricing.js";
import { defineEstimator } from "../../src/credits/estimators/estimator.js";
import { ESTIMATORS } from "../../src/credits/estimators/registry.js";
import type { MeteredField } from "../../src/credits/metered-field.js";
import { BadUserInputError } from "../../src/errors/errors.js";

const throwing = defineEstimator<{ input: { n: number } }>({
  name: "throwing",
  description: "fails on purpose",
  args: z.object({ input: z.object({ n: z.number() }) }).loose() as never,
  estimate: () => {
    throw new Error("estimator bug");
  },
});

function field(overrides: Partial<MeteredField>): MeteredField {
  return {
    coordinate: "Mutation.op",
    typeName: "Mutation",
    fieldName: "op",
    creditType: "leads",
    amount: undefined,
    estimator: undefined,
    meter: undefined,
    description: undefined,
    ...overrides,
  };
}

describe("pricing", () => {
  const leads = field({ estimator: ESTIMATORS.get("leads") });

  it("prices with the estimator over validated arguments, defaults applied", () => {
    const args = validateMeteredArgs(leads, { subscriptionId: "s", input: { query: "x" } });
    expect(priceMeteredCall(leads, args)).toEqual({
      charged: 25,
      estimated: 25,
      estimator: "leads",
      fallback: false,
      adminOverride: false,
      settlesAtActual: false,
      fallbackError: undefined,
    });
  });

  it("a fixed amount is used when there is no estimator", () => {
    expect(priceMeteredCall(field({ amount: 7 }), {})).toMatchObject({ charged: 7, estimated: 7, estimator: null, fallback: false });
  });

  it("an estimator that throws falls back to the fixed amount, or 1, and says so", () => {
    const withAmount = priceMeteredCall(field({ estimator: throwing, amount: 4 }), { input: { n: 1 } });
    expect(withAmount).toMatchObject({ charged: 4, estimated: 4, estimator: "throwing", fallback: true });
    expect((withAmount.fallbackError as Error).message).toBe("estimator bug");
    expect(priceMeteredCall(field({ estimator: throwing }), { input: { n: 1 } })).toMatchObject({ charged: 1, fallback: true });
  });

  it("an admin override replaces the charge (0 allowed) and keeps the estimate", () => {
    const args = validateMeteredArgs(leads, { subscriptionId: "s", input: { query: "x", limit: 9 } });
    expect(priceMeteredCall(leads, args, 0)).toMatchObject({ charged: 0, estimated: 9, adminOverride: true });
    expect(priceMeteredCall(leads, args, 30)).toMatchObject({ charged: 30, estimated: 9, adminOverride: true });
    expect(priceMeteredCall(leads, args, null)).toMatchObject({ charged: 9, adminOverride: false });
  });

  it.each([
    [{ input: { query: "x" } }, /needs a subscriptionId/],
    [{ subscriptionId: "  ", input: { query: "x" } }, /needs a subscriptionId/],
    [{ subscriptionId: "s", input: { query: "x" }, creditAmount: -1 }, /creditAmount/],
    [{ subscriptionId: "s", input: { query: "x", limit: 0 } }, /input\.limit/],
    [{ subscriptionId: "s", input: { query: "" } }, /input\.query/],
  ])("refuses %o with BAD_USER_INPUT", (args, message) => {
    expect(() => validateMeteredArgs(leads, args)).toThrow(BadUserInputError);
    expect(() => validateMeteredArgs(leads, args)).toThrow(message);
  });
});
