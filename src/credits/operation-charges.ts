/**
 * All or nothing per operation (DESIGN.md, "The charge path", step 6), and settlement once the
 * result is known (step 8).
 *
 * Before execution starts, every metered field the operation will run that can be priced up front
 * (the fields creditPreview prices: root fields and fields reached through non-list fields) goes
 * through steps 1–6 together: one hold statement for all of them. If any is refused, none runs and
 * nothing is held. Each field then finds its hold by response path when it runs.
 *
 * After execution, every hold of the request settles in one statement: a field whose value error
 * propagation took out of the response (nulled through a non-null parent by a sibling's error, or in
 * its own place by a descendant's), one never reached, or one whose client went away is refunded
 * whole. A null the resolver returned is its result, delivered as such, and charged. A response that
 * then still does not reach the client (it went away while the holds settled or the response was
 * written) has its settled calls refunded after (`undelivered`, called by the HTTP layer).
 */
import {
  getArgumentValues,
  getVariableValues,
  type DocumentNode,
  type GraphQLSchema,
  type OperationDefinitionNode,
} from "graphql";
import type { CreditsRequest as RequestContext } from "./credits-request.js";
import { NORMALISED_ID_NAMES, normaliseId } from "../graphql/normalise-ids.js";
import { chargeCalls, refundUndelivered, settleRequest, type ChargeDeps, type MeteredCall, type RefusedCall } from "./charge-phases.js";
import type { MeteredField } from "./metered-field.js";
import { withSubscriptionOf } from "./charge-wrapper.js";
import { findMeteredFields, indexMeteredFields, runningFields, type MeteredFieldOccurrence } from "./preview/field-walker.js";

export interface OperationCharges {
  /** Holds the operation's upfront-priced fields; the refusals when it may not run, else undefined. */
  holdOperation(request: OperationRequest): Promise<RefusedCall[] | undefined>;
  /** Settles every hold of the request; `data` is the response's data as it will be sent. */
  settle(ctx: RequestContext, data: unknown): Promise<void>;
  /** The settled response never reached the client: refunds what its calls cost. */
  undelivered(ctx: RequestContext): Promise<void>;
}

export interface OperationRequest {
  schema: GraphQLSchema;
  document: DocumentNode;
  operation: OperationDefinitionNode;
  variables: Record<string, unknown> | undefined;
  ctx: RequestContext;
}

export function createOperationCharges(deps: ChargeDeps, meteredFields: readonly MeteredField[]): OperationCharges {
  const index = indexMeteredFields(meteredFields);
  // Apollo keeps parsed documents (and so their operation nodes) across requests: plan each once.
  const plans = new WeakMap<OperationDefinitionNode, MeteredFieldOccurrence[]>();
  const planOf = (schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode) => {
    let plan = plans.get(operation);
    if (!plan) {
      plan = findMeteredFields(schema, document, operation, index).filter((o) => !o.throughList);
      plans.set(operation, plan);
    }
    return plan;
  };

  return {
    async holdOperation({ schema, document, operation, variables, ctx }) {
      let plan: MeteredFieldOccurrence[];
      try {
        plan = planOf(schema, document, operation);
      } catch {
        return undefined; // too large to plan: each field is held alone when it runs
      }
      if (plan.length === 0) return undefined;
      const calls = upfrontCalls(schema, operation, plan, variables)?.map((c) => ({ ...c, args: withSubscriptionOf(ctx, c.args) }));
      // Variables or arguments that do not coerce: execution refuses them before any field runs.
      if (!calls) return undefined;
      const outcome = await chargeCalls(deps, ctx, calls);
      if (!outcome.ok) return outcome.refused;
      for (const held of outcome.held) ctx.charges.upfront.set(held.call.path.join("."), held);
      return undefined;
    },
    settle: (ctx, data) =>
      settleRequest(deps, ctx, (path, result) => !ctx.charges.responseLost && !ctx.clientGone?.() && reachedResponse(data, path, result)),
    undelivered: (ctx) => refundUndelivered(deps, ctx),
  };
}

/** The calls the operation runs with these variables, arguments coerced as graphql-js will; undefined when they do not coerce. */
function upfrontCalls(
  schema: GraphQLSchema,
  operation: OperationDefinitionNode,
  plan: readonly MeteredFieldOccurrence[],
  rawVariables: Record<string, unknown> | undefined,
): MeteredCall[] | undefined {
  const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], rawVariables ?? {}, { maxErrors: 1 });
  if (coerced.errors) return undefined;
  try {
    return runningFields(plan, coerced.coerced).map((o) => ({
      field: o.metered,
      path: [...o.path],
      args: normaliseIdArgs(getArgumentValues(o.fieldDef, o.node, coerced.coerced)),
    }));
  } catch {
    return undefined;
  }
}

/** Ids as the resolver will see them (lower-case UUIDs, src/graphql/normalise-ids.ts), so the hold and the call agree. */
function normaliseIdArgs(args: Record<string, unknown>): Record<string, unknown> {
  let copy: Record<string, unknown> | undefined;
  for (const name of NORMALISED_ID_NAMES) {
    const value = args[name];
    const next = normaliseId(value);
    if (next !== value) (copy ??= { ...args })[name] = next;
  }
  return copy ?? args;
}

/**
 * Whether the value a resolver returned (`result`) is in the response at `path`. graphql-js puts
 * nothing but null in place of a value it was given, and only for an error: a missing or null place
 * above the field is a parent nulled by error propagation (a sibling's error through non-null parents,
 * or data: null), and a null in the field's own place where the resolver returned a value is a
 * descendant's error propagated up to it. A null (or undefined) the resolver returned itself reached
 * the client as null: delivered, not a reason to refund (DESIGN.md, "The charge path", step 8).
 */
function reachedResponse(data: unknown, path: readonly (string | number)[], result: unknown): boolean {
  const parent = valueAt(data, path.slice(0, -1));
  const key = path[path.length - 1];
  if (parent === null || typeof parent !== "object" || key === undefined || !Object.hasOwn(parent, key)) return false;
  return (parent as Record<string, unknown>)[key] != null || result == null;
}

/** The value at a response path in `data`, or undefined when it (or a parent) is missing or null. */
function valueAt(data: unknown, path: readonly (string | number)[]): unknown {
  let value = data;
  for (const key of path) {
    if (value === null || typeof value !== "object") return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}
