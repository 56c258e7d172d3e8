/**
 * Plans from the configuration: PLANS (JSON) or PLANS_FILE (a JSON file), read once at start by
 * src/config/config.ts. A plan has a name, a period and per credit type an allowance and a rollover
 * cap:
 *
 *   [{ "name": "pro", "period": "1mo", "allowances": { "ai": { "allowance": 1000, "rolloverMax": 200 } } }]
 *
 * Subscriptions on a plan the configuration does not name get no plan credits, nor do those on a
 * plan that grants nothing (grantsSomething). Such a plan has no periods, so it may leave `period`
 * out (NO_PERIOD); a plan that grants something must give one.
 */
import { readFileSync } from "node:fs";
import { z } from "zod";
import { CREDIT_TYPE_NAMES } from "../credits/credit-types.js";
import { readPeriod, type PlanPeriod } from "./period.js";

export interface PlanAllowanceDefinition {
  readonly type: string;
  readonly allowance: number;
  readonly rolloverMax: number;
}

/** The period of a plan that grants nothing and gives none: `plans` lists its period as "". */
export interface NoPeriod {
  readonly kind: "none";
  readonly text: "";
}

export const NO_PERIOD: NoPeriod = Object.freeze({ kind: "none", text: "" });

export interface PlanDefinition {
  readonly name: string;
  /** NO_PERIOD only on a plan that grants nothing: grantsSomething narrows it away. */
  readonly period: PlanPeriod | NoPeriod;
  /** Sorted by credit type: renewal locks balances in this order, as the hold statement does. */
  readonly allowances: readonly PlanAllowanceDefinition[];
}

/** Most credits an allowance or a rollover may have (documented with PLANS in the README and docs/grants.md). */
export const MAX_PLAN_CREDITS = 1_000_000_000;

/**
 * An allowance's `allowance` (required) or `rolloverMax` (0 when left out, by its default): a whole
 * number from 0 to MAX_PLAN_CREDITS, with one message for any other value (zod's own checks gave two
 * for 1e20, one of them naming 9007199254740991).
 */
const credits = (key: "allowance" | "rolloverMax") =>
  z.unknown().transform((value, ctx) => {
    if (typeof value === "number" && Number.isInteger(value) && value >= 0 && value <= MAX_PLAN_CREDITS) return value;
    ctx.addIssue({
      code: "custom",
      message:
        value === undefined
          ? `${key} is missing: give a whole number of credits from 0 to ${MAX_PLAN_CREDITS}`
          : `${key} must be a whole number of credits from 0 to ${MAX_PLAN_CREDITS}, not ${JSON.stringify(value)}`,
    });
    return z.NEVER;
  });

/** The keys a plan and an allowance may have: any other is refused (a typo such as "rollovermax" would otherwise be dropped). */
const PLAN_KEYS = ["name", "period", "allowances"] as const;
const ALLOWANCE_KEYS = ["allowance", "rolloverMax"] as const;

const planSchema = z.strictObject({
  name: z.string().trim().min(1).max(200),
  period: z
    .string()
    .transform((text, ctx) => {
      const period = readPeriod(text);
      if ("problem" in period) {
        ctx.addIssue({ code: "custom", message: period.problem });
        return z.NEVER;
      }
      return period;
    })
    .optional(),
  // Keys checked after the record, not by a key schema: zod reports a refused key only as
  // "Invalid key in record", without the message that names the known types.
  allowances: z.record(z.string(), z.strictObject({ allowance: credits("allowance"), rolloverMax: credits("rolloverMax").default(0) })).superRefine((allowances, ctx) => {
    for (const type of Object.keys(allowances)) {
      if (!CREDIT_TYPE_NAMES.has(type)) {
        ctx.addIssue({ code: "custom", path: [type], message: `"${type}" is not a credit type: use one of ${[...CREDIT_TYPE_NAMES].join(", ")}` });
      }
    }
  }),
});

/** A plan that grants something renews every period, so it needs one; only a plan that grants nothing may leave it out. */
const plannedSchema = planSchema.superRefine((plan, ctx) => {
  const grants = Object.values(plan.allowances).some((a) => a.allowance > 0);
  if (grants && plan.period === undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["period"],
      message: 'period is missing: a plan that grants credits needs one, such as "1mo" or "30d" (only a plan whose allowances are all 0 may leave it out)',
    });
  }
});

const plansSchema = z.array(plannedSchema).superRefine((plans, ctx) => {
  const seen = new Set<string>();
  for (const [i, plan] of plans.entries()) {
    if (seen.has(plan.name)) ctx.addIssue({ code: "custom", path: [i, "name"], message: `plan "${plan.name}" is defined twice` });
    seen.add(plan.name);
  }
});

/** " did you mean rolloverMax?" for a key close to a known one (its case, a separator or two letters off). */
function nearMiss(key: string, known: readonly string[]): string | undefined {
  const squash = (k: string) => k.toLowerCase().replace(/[-_\s]/g, "");
  const k = squash(key);
  return known.find((candidate) => {
    const c = squash(candidate);
    return c === k || (Math.min(c.length, k.length) >= 4 && editDistance(c, k) <= 2);
  });
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = row;
  }
  return previous[b.length];
}

/** One line per problem: where it is (PLANS.0.period), the plan it is in when it has a name, and what is wrong. */
function describeIssues(source: string, json: unknown, issues: readonly z.core.$ZodIssue[]): string[] {
  const lines: string[] = [];
  for (const issue of issues) {
    const index = typeof issue.path[0] === "number" ? issue.path[0] : undefined;
    const name = index !== undefined && Array.isArray(json) ? (json[index] as { name?: unknown } | null)?.name : undefined;
    const plan = typeof name === "string" && name.trim() !== "" ? `plan ${JSON.stringify(name.trim())}: ` : "";
    const where = (path: readonly PropertyKey[]) => [source, ...path.map(String)].join(".");
    if (issue.code === "unrecognized_keys") {
      // A plan (path [i]) or an allowance (path [i, "allowances", type]).
      const inAllowance = issue.path.length === 3;
      const known: readonly string[] = inAllowance ? ALLOWANCE_KEYS : PLAN_KEYS;
      const what = inAllowance ? ` in the allowance of ${String(issue.path[2])} (an allowance has ${known.join(", ")})` : ` (a plan has ${known.join(", ")})`;
      for (const key of issue.keys) {
        const hint = nearMiss(key, known);
        lines.push(`${where([...issue.path, key])}: ${plan}unknown key ${JSON.stringify(key)}${what}${hint ? `: did you mean ${hint}?` : ""}`);
      }
      continue;
    }
    lines.push(`${where(issue.path)}: ${issue.message.startsWith("plan ") ? "" : plan}${issue.message}`);
  }
  return lines;
}

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
    throw new PlanConfigError(describeIssues(source, json, result.error.issues));
  }
  return Object.freeze(
    result.data.map((plan) =>
      Object.freeze({
        name: plan.name,
        period: plan.period ?? NO_PERIOD,
        allowances: Object.freeze(
          Object.entries(plan.allowances)
            .map(([type, a]) => Object.freeze({ type, allowance: a.allowance, rolloverMax: a.rolloverMax }))
            .sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : 0)),
        ),
      }),
    ),
  );
}

/**
 * Whether the plan grants anything: an allowance above 0. A plan whose allowances are all 0 (or that
 * has none) is accepted and listed, but it has no periods: its subscriptions get no plan credits and
 * no `currentPeriodEnd`, like those on a plan the configuration does not name.
 */
export function grantsSomething(plan: PlanDefinition): plan is PlanDefinition & { readonly period: PlanPeriod } {
  // loadPlans gives every plan that grants something a period; checked all the same, so the type holds.
  return plan.period.kind !== "none" && plan.allowances.some((a) => a.allowance > 0);
}

/** The plan of this name, if the configuration defines one. */
export function findPlan(plans: readonly PlanDefinition[], name: string): PlanDefinition | undefined {
  return plans.find((p) => p.name === name);
}
