/**
 * Prices every metered field a GraphQL operation would run, without running anything: the same
 * argument coercion graphql-js does before a resolver (getVariableValues, getArgumentValues), then the
 * same validation and pricing the charge wrapper uses (pricing.ts). So a preview equals the charge
 * the mutation then makes with the same variables, and refuses what the mutation would refuse with
 * the same message.
 */
import { GraphQLError, getArgumentValues, getVariableValues, type GraphQLSchema } from "graphql";
import { BadUserInputError, ForbiddenError } from "../../errors/errors.js";
import type { MeteredField } from "../metered-field.js";
import { priceMeteredCall, validateMeteredArgs } from "../pricing.js";
import { previewDocumentCache } from "./document-cache.js";
import { runningFields } from "./field-walker.js";

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
}

/** The wrapper's refusal of a non-admin creditAmount, word for word. */
export const CREDIT_AMOUNT_ADMIN_ONLY = "creditAmount is for admins only: leave it out and the call is priced for you";

/**
 * Prices the document's operation field by field, in document order. Throws BAD_USER_INPUT for a
 * document, variables or arguments the server would refuse, FORBIDDEN for a non-admin creditAmount.
 */
export function priceDocument(schema: GraphQLSchema, meteredFields: readonly MeteredField[], request: PriceDocumentRequest): PricedField[] {
  const plan = previewDocumentCache(schema, meteredFields).plan(request.query, request.operationName);

  const coerced = getVariableValues(schema, plan.operation.variableDefinitions ?? [], request.variables ?? {}, { maxErrors: 5 });
  if (coerced.errors) {
    throw new BadUserInputError(`The variables do not fit the document: ${coerced.errors.map((e) => e.message).join("; ")}`, "variables");
  }

  return runningFields(plan.meteredFields, coerced.coerced).map((occurrence): PricedField => {
    const field = occurrence.metered;
    let args: Record<string, unknown>;
    try {
      args = getArgumentValues(occurrence.fieldDef, occurrence.node, coerced.coerced);
    } catch (err) {
      if (err instanceof GraphQLError) throw new BadUserInputError(err.message);
      throw err;
    }
    const validArgs = validateMeteredArgs(field, args);
    const override = args.creditAmount as number | null | undefined;
    if (override !== undefined && override !== null && !request.callerIsAdmin) throw new ForbiddenError(CREDIT_AMOUNT_ADMIN_ONLY);
    const price = priceMeteredCall(field, validArgs, override);
    return {
      path: [...occurrence.path],
      operation: field.coordinate,
      type: field.creditType,
      amount: price.charged,
      estimator: price.estimator,
      fallback: price.fallback,
    };
  });
}

/** Sums priced fields per credit type, types in name order. */
export function totalsByType(fields: readonly PricedField[]): { type: string; amount: number }[] {
  const totals = new Map<string, number>();
  for (const field of fields) totals.set(field.type, (totals.get(field.type) ?? 0) + field.amount);
  return [...totals.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([type, amount]) => ({ type, amount }));
}
