/**
 * Validation of a grant's terms (grantCredits' category, priority and expiresAt), before anything
 * reaches the database. Whether expiresAt is still in the future is not judged here: this instance's
 * clock may be minutes off the database's, which judges every other expiry (now() in the draws and the
 * expiry pass), so the statement that writes the grant judges it (grant-credits.ts).
 */
import { BadUserInputError } from "../errors/errors.js";
import type { GrantCategoryValue } from "../db/schema/grants.js";
import type { GrantTerms } from "./grant-credits.js";

export const MIN_PRIORITY = 0;
export const MAX_PRIORITY = 100;

/** The answer to an expiresAt that is not a time, or not after the database's now(). */
export function expiresAtNotInFuture(): BadUserInputError {
  return new BadUserInputError("expiresAt must be in the future; leave it out for credits that never expire", "expiresAt");
}

export function validateGrantTerms(
  input: { category?: GrantCategoryValue | null; priority?: number | null; expiresAt?: Date | null },
): GrantTerms {
  const priority = input.priority ?? 50;
  if (!Number.isInteger(priority) || priority < MIN_PRIORITY || priority > MAX_PRIORITY) {
    throw new BadUserInputError(`priority must be a whole number from ${MIN_PRIORITY} to ${MAX_PRIORITY} (lower is spent first)`, "priority");
  }
  const expiresAt = input.expiresAt ?? null;
  if (expiresAt !== null && Number.isNaN(expiresAt.getTime())) throw expiresAtNotInFuture();
  return { category: input.category ?? "PAID", priority, expiresAt };
}
