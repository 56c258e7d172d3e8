/**
 * A grant's terms as typed in the admin's form (category, priority, expiry), checked before
 * anything is sent, with the same rules as the server (src/grants/grant-input.ts): a priority is a
 * whole number from 0 to 100 (lower is spent first) or empty (none is sent: the API's default, 50),
 * an expiry is in the future or empty (never).
 */
import type { GrantCategory } from "../generated/graphql";
import { parseWholeNumber } from "../components/format";

export const GRANT_CATEGORIES: GrantCategory[] = ["PAID", "PROMOTIONAL", "PLAN"];
/** The priority of a grant sent without one (the API's default), and the form's first value. */
export const DEFAULT_PRIORITY = 50;

/** What is wrong with the priority typed; undefined when it is fine (empty is: the default applies). */
export function priorityProblem(text: string): string | undefined {
  if (text.trim() === "") return undefined;
  const n = parseWholeNumber(text);
  return n === undefined || n < 0 || n > 100
    ? `Priority must be a whole number from 0 to 100 (lower is spent first), e.g. ${DEFAULT_PRIORITY}, or empty for the default (${DEFAULT_PRIORITY}).`
    : undefined;
}

/** The priority to send: undefined when the field is empty (the API's default, DEFAULT_PRIORITY, applies). */
export function parsePriority(text: string): number | undefined {
  return text.trim() === "" ? undefined : parseWholeNumber(text);
}

/**
 * The expiry typed in a datetime-local field (the browser's local time) as an ISO instant; empty is
 * never. A problem when it is not a time, or not in the future.
 */
export function parseExpiry(text: string, now = Date.now()): { expiresAt?: string; problem?: string } {
  if (text.trim() === "") return {};
  const at = new Date(text);
  if (Number.isNaN(at.getTime())) return { problem: "Expiry must be a date and time, or empty for credits that never expire." };
  if (at.getTime() <= now) return { problem: "Expiry must be in the future, or empty for credits that never expire." };
  return { expiresAt: at.toISOString() };
}
