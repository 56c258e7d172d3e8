/**
 * Validation of admin inputs, before anything reaches the database. GraphQL's Int already refuses
 * numbers beyond 32 bits; these checks refuse what the schema's types cannot express.
 */
import { BadUserInputError, NotFoundError } from "../errors/errors.js";
import { CREDIT_TYPES, isCreditType } from "../credits/credit-types.js";
import { isUuid } from "../util/uuid.js";
import { quoteId } from "../util/quote-id.js";
import { hasControlCharacter, PADDED_USER_ID, userIdProblem } from "../util/text.js";

/** Longest plan name accepted. A user id's bound is the token subject's, MAX_USER_ID_LENGTH (src/util/text.ts). */
export const MAX_NAME_LENGTH = 200;
/** Longest reason accepted; a reason is a note for people reading the ledger, not a document. */
export const MAX_REASON_LENGTH = 1000;

const KNOWN_TYPES = CREDIT_TYPES.map((t) => t.name).join(", ");

/** A reason for a change (kept with its ledger entry, or with the subscription's status): required, not blank. Returns it trimmed. */
export function requireReason(reason: string, field = "reason"): string {
  const trimmed = reason.trim();
  if (trimmed === "") throw new BadUserInputError(`${field} is required: say why, for whoever reads this change later`, field);
  if (trimmed.length > MAX_REASON_LENGTH) {
    throw new BadUserInputError(`${field} is too long: at most ${MAX_REASON_LENGTH} characters`, field);
  }
  return trimmed;
}

/** A plan name: not blank, at most MAX_NAME_LENGTH characters, no control characters. Returns it trimmed. */
export function requireName(value: string, field: string): string {
  const trimmed = value.trim();
  if (trimmed === "") throw new BadUserInputError(`${field} must not be empty`, field);
  if (trimmed.length > MAX_NAME_LENGTH) {
    throw new BadUserInputError(`${field} is too long: at most ${MAX_NAME_LENGTH} characters`, field);
  }
  if (hasControlCharacter(trimmed)) throw new BadUserInputError(`${field} must not contain control characters`, field);
  return trimmed;
}

/**
 * A user id naming a subscription's owner: a token's `sub`, under the very rule the token verifier
 * applies (userIdProblem), so every owner can sign in and every subject that signs in can be an
 * owner. Kept verbatim, never trimmed: " bob " would silently become "bob", another user, so white
 * space at either end is refused instead.
 */
export function requireUserId(value: string, field: string): string {
  const problem = userIdProblem(value);
  if (!problem) return value;
  const what = problem === PADDED_USER_ID ? `${problem}: give the user id exactly as its token's sub has it` : problem;
  throw new BadUserInputError(`${field} ${what}`, field);
}

export function requireCreditType(type: string, field = "type"): string {
  if (!isCreditType(type)) throw new BadUserInputError(`Unknown credit type "${type}": use one of ${KNOWN_TYPES}`, field);
  return type;
}

/** Ids are UUIDs; anything else cannot exist, so it is NOT_FOUND without asking the database. */
export function requireWellFormedId(id: string, what: string): string {
  if (!isUuid(id)) throw new NotFoundError(`${what} ${quoteId(id)} does not exist`);
  return id;
}

/** Starting credits: known, distinct types and whole amounts of 0 or more. */
export function validateInitialCredits(
  credits: readonly { type: string; amount: number }[] | null | undefined,
): { type: string; amount: number }[] {
  const seen = new Set<string>();
  return (credits ?? []).map((credit, index) => {
    const field = `initialCredits[${index}]`;
    requireCreditType(credit.type, `${field}.type`);
    if (seen.has(credit.type)) {
      throw new BadUserInputError(`initialCredits names ${credit.type} twice: give each credit type once`, `${field}.type`);
    }
    seen.add(credit.type);
    if (!Number.isInteger(credit.amount) || credit.amount < 0) {
      throw new BadUserInputError(`${field}.amount must be a whole number of credits, 0 or more`, `${field}.amount`);
    }
    return { type: credit.type, amount: credit.amount };
  });
}

/**
 * A new subscription's starting credits and its plan's first allowance land on the same balances, in
 * the transaction that opens it: refused here when together they pass the largest balance, as a
 * grant of that much would be, instead of failing in the database.
 */
export function requireRoomForFirstPeriod(
  initialCredits: readonly { type: string; amount: number }[],
  plan: { readonly allowances: readonly { type: string; allowance: number }[] } | undefined,
  maxBalance: number,
): void {
  for (const { type, allowance } of plan?.allowances ?? []) {
    const initial = initialCredits.find((credit) => credit.type === type)?.amount ?? 0;
    if (initial + allowance > maxBalance) {
      const index = initialCredits.findIndex((credit) => credit.type === type);
      throw new BadUserInputError(
        `initialCredits of ${type} (${initial}) plus the plan's allowance of ${allowance} would pass the largest balance, ${maxBalance}`,
        `initialCredits[${index}].amount`,
      );
    }
  }
}
