/**
 * Plans from the configuration: PLANS (JSON) or PLANS_FILE (a JSON file), read once at start by
 * src/config/config.ts. A plan has a name, a period and per credit type an allowance and a rollover
 * cap:
 *
 *   [{ "name": "pro", "period": "1mo", "allowances": { "ai": { "allowance": 1000, "rolloverMax": 200 } } }]
 *
 * Subscriptions on a plan the configuration does not name get no plan credits.
 */
import { readFileSync } from "node:fs";
import { z } from "zod";
import { CREDIT_TYPE_NAMES } from "../credits/credit-types.js";
import { parsePeriod, type PlanPeriod } from "./period.js";

export interface PlanAllowanceDefinition {
  readonly type: string;
  readonly allowance: number;
  readonly rolloverMax: number;
}

export interface PlanDefinition {
  readonly name: string;
  readonly period: PlanPeriod;
  /** Sorted by credit type: renewal locks balances in this order, as the hold statement does. */
  readonly allowances: readonly PlanAllowanceDefinition[];
}

const credits = z.number().int().min(0).max(1_000_000_000);

const planSchema = z.object({
  name: z.string().trim().min(1).max(200),
  period: z.string().transform((text, ctx) => {
    const period = parsePeriod(text);
    if (!period) {
      ctx.addIssue({ code: "custom", message: `period must be "1mo" (calendar month) or a duration of 1s or more such as "30d"` });
      return z.NEVER;
    }
    return period;
  }),
  // Keys checked after the record, not by a key schema: zod reports a refused key only as
  // "Invalid key in record", without the message that names the known types.
  allowances: z.record(z.string(), z.object({ allowance: credits, rolloverMax: credits.default(0) })).superRefine((allowances, ctx) => {
    for (const type of Object.keys(allowances)) {
      if (!CREDIT_TYPE_NAMES.has(type)) {
        ctx.addIssue({ code: "custom", path: [type], message: `"${type}" is not a credit type: use one of ${[...CREDIT_TYPE_NAMES].join(", ")}` });
      }
    }
  }),
});

const plansSchema = z.array(planSchema).superRefine((plans, ctx) => {
  const seen = new Set<string>();
  for (const [i, plan] of plans.entries()) {
    if (seen.has(plan.name)) ctx.addIssue({ code: "custom", path: [i, "name"], message: `plan "${plan.name}" is defined twice` });
    seen.add(plan.name);
  }
});

export class PlanConfigError extends Error {
  constructor(public readonly problems: string[]) {
    super(problems.join("; "));
    this.name = "PlanConfigError";
  }
}

/** Parses the plans from PLANS or PLANS_FILE (not both); none when neither is set. Throws PlanConfigError. */
export function loadPlans(plansJson: string | undefined, plansFile: string | undefined): readonly PlanDefinition[] {
  if (plansJson !== undefined && plansFile !== undefined) throw new PlanConfigError(["PLANS: set PLANS or PLANS_FILE, not both"]);
  const source = plansJson !== undefined ? "PLANS" : "PLANS_FILE";
  let text: string | undefined = plansJson;
  if (plansFile !== undefined) {
    try {
      text = readFileSync(plansFile, "utf8");
    } catch (err) {
      throw new PlanConfigError([`PLANS_FILE: cannot read ${plansFile}: ${(err as Error).message}`]);
    }
  }
  if (text === undefined) return Object.freeze([]);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new PlanConfigError([`${source}: not valid JSON`]);
  }
  const result = plansSchema.safeParse(json);
  if (!result.success) {
    throw new PlanConfigError(result.error.issues.map((issue) => `${source}.${issue.path.join(".")}: ${issue.message}`));
  }
  return Object.freeze(
    result.data.map((plan) =>
      Object.freeze({
        name: plan.name,
        period: plan.period,
        allowances: Object.freeze(
          Object.entries(plan.allowances)
            .map(([type, a]) => Object.freeze({ type, allowance: a.allowance, rolloverMax: a.rolloverMax }))
            .sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : 0)),
        ),
      }),
    ),
  );
}

/** The plan of this name, if the configuration defines one. */
export function findPlan(plans: readonly PlanDefinition[], name: string): PlanDefinition | undefined {
  return plans.find((p) => p.name === name);
}
