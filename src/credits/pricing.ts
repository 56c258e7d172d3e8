/**
 * Pricing, shared by the charge wrapper and by creditPreview so a preview always equals the charge
 * for the same arguments. Validation comes first (the estimator's argument schema is the field's
 * input validation); an estimator that throws never blocks a request: the fixed amount (or 1) is
 * used and the fallback is reported.
 */
import { BadUserInputError } from "../errors/errors.js";
import type { MeteredField } from "./metered-field.js";
import { formatZodError, normalizeEstimate } from "./estimators/registry.js";

/** The refusal of a non-admin creditAmount, the same from a mutation and from a preview. */
export const CREDIT_AMOUNT_ADMIN_ONLY = "creditAmount is for admins only: leave it out and the call is priced for you";

export interface Price {
  /** Credits to debit. */
  charged: number;
  /** What the estimator (or the fixed amount) said, before any admin override. */
  estimated: number;
  estimator: string | null;
  fallback: boolean;
  adminOverride: boolean;
  /** The call settles at its metered actual cost (a meter, no admin override): `charged` is only the hold. */
  settlesAtActual: boolean;
  /** Why the estimator failed, when it did: for the log, never for the client. */
  fallbackError?: unknown;
}

/** Validates the field's arguments; throws BAD_USER_INPUT naming what is wrong. Returns the parsed arguments. */
export function validateMeteredArgs(field: MeteredField, args: Record<string, unknown>): unknown {
  const subscriptionId = args.subscriptionId;
  if (typeof subscriptionId !== "string" || subscriptionId.trim() === "") {
    throw new BadUserInputError(`${field.coordinate} needs a subscriptionId`, "subscriptionId");
  }
  const creditAmount = args.creditAmount;
  if (creditAmount !== undefined && creditAmount !== null && (!Number.isInteger(creditAmount) || (creditAmount as number) < 0)) {
    throw new BadUserInputError("creditAmount must be a whole number of credits, 0 or more", "creditAmount");
  }
  if (!field.estimator) return args;
  const parsed = field.estimator.args.safeParse(args);
  if (!parsed.success) throw new BadUserInputError(formatZodError(parsed.error));
  return parsed.data;
}

/** Prices one call from already validated arguments. `override` is an admin's creditAmount. */
export function priceMeteredCall(field: MeteredField, validArgs: unknown, override?: number | null): Price {
  let estimated: number;
  let fallback = false;
  let fallbackError: unknown;
  if (field.estimator) {
    try {
      estimated = normalizeEstimate(field.estimator.estimate(validArgs));
    } catch (err) {
      estimated = field.amount ?? 1;
      fallback = true;
      fallbackError = err;
    }
  } else {
    estimated = field.amount ?? 1;
  }
  const adminOverride = override !== undefined && override !== null;
  return {
    charged: adminOverride ? override : estimated,
    estimated,
    estimator: field.estimator?.name ?? null,
    fallback,
    adminOverride,
    settlesAtActual: field.meter !== undefined && !adminOverride,
    fallbackError,
  };
}
