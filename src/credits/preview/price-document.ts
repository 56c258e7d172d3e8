/**
 * Prices every metered field a GraphQL operation would run, without running anything: the same
 * argument coercion graphql-js does before a resolver (getVariableValues, getArgumentValues), then the
 * same validation and pricing the charge wrapper uses (pricing.ts). So a preview equals the charge
 * the mutation then makes with the same variables, and refuses what the mutation would refuse with
 * the same message.
 *
 * Prices are memoised: a field's price is a function of its arguments other than subscriptionId
 * (validateMeteredArgs only checks that subscriptionId is given; estimators price the work from the
 * other arguments, never from who pays). So once a place in a document has been priced with some
 * values of the variables its other arguments use, the same values give the same price, whichever
 * subscription previews it. Only successful prices are kept: a refusal is computed afresh each time,
 * so its message is always the mutation's own.
 */
import { GraphQLError, Kind, getArgumentValues, getVariableValues, type GraphQLSchema } from "graphql";
import { BadUserInputError, ForbiddenError } from "../../errors/errors.js";
import type { DocumentChecks } from "../../graphql/validation/index.js";
import { nullVariableErrors } from "../../graphql/validation/null-variables.js";
import { pageBudgetRefusal } from "../../graphql/validation/page-budget.js";
import type { MeteredField } from "../metered-field.js";
import { CREDIT_AMOUNT_ADMIN_ONLY, priceMeteredCall, validateMeteredArgs, type Price } from "../pricing.js";
import { previewDocumentCache } from "./document-cache.js";
import { runningFields, type MeteredFieldOccurrence } from "./field-walker.js";
import type { LRUCache } from "lru-cache";

export interface PriceDocumentRequest {
  query: string;
  variables?: Record<string, unknown> | null;
  operationName?: string | null;
  /** Admins may set creditAmount; anyone else who does is refused, as the mutation would refuse them. */
  callerIsAdmin: boolean;
}

export interface PricedField {
  path: string[];
  /** Schema coordinate, e.g. Mutation.runAiTask. */
  operation: string;
  type: string;
  /** What the mutation would charge: the admin's creditAmount when given, else the estimate. */
  amount: number;
  estimator: string | null;
  fallback: boolean;
  /** The field has a meter and no admin override: `amount` is the most the call can cost. */
  settlesAtActual: boolean;
}

/** The wrapper's refusal of a non-admin creditAmount, word for word. */

/** Stands for an absent variable in a memo key (JSON would print it as null, which means something else). */
const ABSENT = { absent: true };

/**
 * The memo key of one occurrence with these variables, or undefined when the fast path does not
 * apply: subscriptionId must be present and pass validateMeteredArgs's own check, so that the only
 * thing the memo skips is work whose outcome is known.
 */
function memoKey(occurrence: MeteredFieldOccurrence, variables: Record<string, unknown>): string | undefined {
  const node = occurrence.subscriptionIdNode;
  const subscriptionId =
    node?.kind === Kind.VARIABLE ? variables[node.name.value] : node?.kind === Kind.STRING ? node.value : undefined;
  if (typeof subscriptionId !== "string" || subscriptionId.trim() === "") return undefined;
  const values = occurrence.priceVariables.map((name) => (variables[name] === undefined ? ABSENT : variables[name]));
  return `${occurrence.id}:${JSON.stringify(values)}`;
}

/** Validates and prices one occurrence exactly as the charge wrapper does; throws its refusals. */
function priceOccurrence(occurrence: MeteredFieldOccurrence, variables: Record<string, unknown>): Price {
  const field = occurrence.metered;
  let args: Record<string, unknown>;
  try {
    args = getArgumentValues(occurrence.fieldDef, occurrence.node, variables);
  } catch (err) {
    if (err instanceof GraphQLError) throw new BadUserInputError(err.message);
    throw err;
  }
  const validArgs = validateMeteredArgs(field, args);
  return priceMeteredCall(field, validArgs, args.creditAmount as number | null | undefined);
}

function memoisedPrice(memo: LRUCache<string, Price>, occurrence: MeteredFieldOccurrence, variables: Record<string, unknown>): Price {
  const key = memoKey(occurrence, variables);
  const known = key === undefined ? undefined : memo.get(key);
  if (known) return known;
  const price = priceOccurrence(occurrence, variables);
  if (key !== undefined) memo.set(key, price, { size: key.length });
  return price;
}

/**
 * Prices the document's operation field by field, in document order. Throws BAD_USER_INPUT for a
 * document, variables or arguments the server would refuse, FORBIDDEN for a non-admin creditAmount.
 * `checks` are the server's own parse options and validation rules (its operation limits), so the
 * document is held to what a request would be held to.
 */
export function priceDocument(
  schema: GraphQLSchema,
  meteredFields: readonly MeteredField[],
  request: PriceDocumentRequest,
  checks?: DocumentChecks,
): PricedField[] {
  const cache = previewDocumentCache(schema, meteredFields, checks);
  const plan = cache.plan(request.query, request.operationName);

  const coerced = getVariableValues(schema, plan.operation.variableDefinitions ?? [], request.variables ?? {}, { maxErrors: 5 });
  if (coerced.errors) {
    throw new BadUserInputError(`The variables do not fit the document: ${coerced.errors.map((e) => e.message).join("; ")}`, "variables");
  }
  // The request would be refused before anything runs for a null where a value is required
  // (null-variables.ts), also in a directive or a field the preview does not price: the same answer.
  const [nullWhereRequired] = nullVariableErrors(schema, plan.document, plan.operation, request.variables ?? undefined);
  if (nullWhereRequired) throw nullWhereRequired;
  // The request would be refused over its page budget (page-budget.ts): the preview says so in the same words.
  const overBudget = pageBudgetRefusal(schema, plan.document, plan.operation, request.variables ?? {});
  if (overBudget) throw new BadUserInputError(overBudget, "query");

  return runningFields(plan.meteredFields, coerced.coerced).map((occurrence): PricedField => {
    const price = memoisedPrice(cache.prices, occurrence, coerced.coerced);
    // The wrapper refuses a non-admin's creditAmount after validating the arguments; so does this.
    if (price.adminOverride && !request.callerIsAdmin) throw new ForbiddenError(CREDIT_AMOUNT_ADMIN_ONLY);
    return {
      path: [...occurrence.path],
      operation: occurrence.metered.coordinate,
      type: occurrence.metered.creditType,
      amount: price.charged,
      estimator: price.estimator,
      fallback: price.fallback,
      settlesAtActual: price.settlesAtActual,
    };
  });
}

/** Sums priced fields per credit type, types in name order. */
export function totalsByType(fields: readonly PricedField[]): { type: string; amount: number }[] {
  const totals = new Map<string, number>();
  for (const field of fields) totals.set(field.type, (totals.get(field.type) ?? 0) + field.amount);
  return [...totals.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([type, amount]) => ({ type, amount }));
}
