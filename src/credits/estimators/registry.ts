/**
 * The estimators a @credits(estimator: …) directive may name. The directive transformer looks names
 * up here once, at startup, so an unknown name never reaches a request.
 */
import type { z } from "zod";
import { aiEstimator } from "./ai.js";
import type { Estimator } from "./estimator.js";
import { formatPath } from "./fields.js";
import { leadsEstimator } from "./leads.js";
import { mlsEstimator } from "./mls.js";
import { phoneEstimator } from "./phone.js";
import { skipTraceEstimator } from "./skiptrace.js";
import { theHarvesterEstimator } from "./theharvester.js";

function byName(estimators: readonly Estimator[]): ReadonlyMap<string, Estimator> {
  const map = new Map<string, Estimator>();
  for (const estimator of estimators) {
    if (map.has(estimator.name)) throw new Error(`Two estimators are named "${estimator.name}"`);
    map.set(estimator.name, estimator);
  }
  return map;
}

export const ESTIMATORS: ReadonlyMap<string, Estimator> = byName([
  aiEstimator,
  leadsEstimator,
  mlsEstimator,
  theHarvesterEstimator,
  skipTraceEstimator,
  phoneEstimator,
]);

/**
 * Turns an estimator's raw result into what is charged: whole credits, at least 1. Throws on a
 * result that is not a usable number, so the caller falls back to the fixed price instead of
 * charging garbage.
 */
export function normalizeEstimate(raw: number): number {
  if (typeof raw !== "number" || !Number.isFinite(raw)) {
    throw new Error(`Estimator returned ${String(raw)}, not a finite number`);
  }
  const credits = Math.max(1, Math.ceil(raw));
  if (!Number.isSafeInteger(credits)) {
    throw new Error(`Estimator returned ${raw}, too large to charge`);
  }
  return credits;
}

/**
 * One line for a BAD_USER_INPUT message: "path: message" per issue, joined by "; ". The estimators'
 * messages already start with their field path ("input.limit must be …"); those are kept as they
 * are rather than printed as "input.limit: input.limit must be …".
 */
export function formatZodError(error: z.ZodError): string {
  const parts = error.issues.map((issue: z.core.$ZodIssue): string => {
    const path = issue.path.length > 0 ? formatPath(issue.path) : "";
    if (path === "" || issue.message.startsWith(path)) return issue.message;
    return `${path}: ${issue.message}`;
  });
  return parts.length > 0 ? `${parts.join("; ")}.` : "Invalid arguments.";
}
