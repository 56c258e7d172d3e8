/**
 * Subscription and ledger-entry ids are UUIDs, which PostgreSQL compares without regard to case but
 * JavaScript does not: an upper-case id was charged under its upper-case spelling (a second
 * idempotency scope, a second DataLoader key) and answered 404 with an Idempotency-Key. So every id
 * is normalised (lower case) where it enters: each argument and input field of type ID named `id`,
 * `subscriptionId` or `entryId`, before any resolver (the credits wrapper included) sees it.
 * User ids (`ownerId`, a token's `sub`) are left alone: they are the identity provider's, verbatim.
 *
 * Applied last, as the outermost wrapper. Which arguments to look at is worked out once per field
 * when the schema is built; per call it costs a string test per id, and allocates only when an id
 * actually changes.
 */
import { MapperKind, mapSchema } from "@graphql-tools/utils";
import {
  defaultFieldResolver,
  getNamedType,
  isInputObjectType,
  type GraphQLArgumentConfig,
  type GraphQLFieldResolver,
  type GraphQLInputObjectType,
  type GraphQLInputType,
  type GraphQLSchema,
} from "graphql";
import { isUuid } from "../util/uuid.js";

/** The names of ID arguments and input fields that hold our UUIDs. */
export const NORMALISED_ID_NAMES: ReadonlySet<string> = new Set(["id", "subscriptionId", "entryId"]);

/** What to normalise in one object of values: by key, either the id itself or a nested input's plan. */
type Plan = ReadonlyMap<string, true | Plan>;

const HAS_UPPER_HEX = /[A-F]/;

/** The lower-case spelling of an upper-case UUID; anything else unchanged. */
export function normaliseId(value: unknown): unknown {
  return typeof value === "string" && HAS_UPPER_HEX.test(value) && isUuid(value) ? value.toLowerCase() : value;
}

function planOfValue(name: string, type: GraphQLInputType, inputPlans: Map<GraphQLInputObjectType, Plan | null>): true | Plan | undefined {
  const named = getNamedType(type);
  if (named.name === "ID") return NORMALISED_ID_NAMES.has(name) ? true : undefined;
  if (isInputObjectType(named)) return planOfInput(named, inputPlans) ?? undefined;
  return undefined;
}

function planOfInput(type: GraphQLInputObjectType, inputPlans: Map<GraphQLInputObjectType, Plan | null>): Plan | null {
  if (inputPlans.has(type)) return inputPlans.get(type)!;
  inputPlans.set(type, null); // a recursive input type: no plan while its own is being worked out
  const plan = new Map<string, true | Plan>();
  for (const field of Object.values(type.getFields())) {
    const inner = planOfValue(field.name, field.type, inputPlans);
    if (inner) plan.set(field.name, inner);
  }
  const result = plan.size > 0 ? plan : null;
  inputPlans.set(type, result);
  return result;
}

function planOfArgs(args: Record<string, GraphQLArgumentConfig>, inputPlans: Map<GraphQLInputObjectType, Plan | null>): Plan | undefined {
  const plan = new Map<string, true | Plan>();
  for (const [name, arg] of Object.entries(args)) {
    const inner = planOfValue(name, arg.type, inputPlans);
    if (inner) plan.set(name, inner);
  }
  return plan.size > 0 ? plan : undefined;
}

/** One value under a plan entry: an id, an input object, or a list of either. */
function normaliseValue(value: unknown, entry: true | Plan): unknown {
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const next = normaliseValue(value[i], entry);
      if (next !== value[i]) (copy ??= [...value])[i] = next;
    }
    return copy ?? value;
  }
  if (entry === true) return normaliseId(value);
  return value !== null && typeof value === "object" ? normaliseObject(value as Record<string, unknown>, entry) : value;
}

/** The same object when nothing changes; a shallow copy with the changed keys otherwise. */
export function normaliseObject<T extends Record<string, unknown>>(values: T, plan: Plan): T {
  let copy: Record<string, unknown> | undefined;
  for (const [key, entry] of plan) {
    const value = values[key];
    if (value === undefined || value === null) continue;
    const next = normaliseValue(value, entry);
    if (next !== value) (copy ??= { ...values })[key] = next;
  }
  return (copy as T | undefined) ?? values;
}

function normalising<S, C>(resolve: GraphQLFieldResolver<S, C>, plan: Plan): GraphQLFieldResolver<S, C> {
  return (source, args, context, info) => resolve(source, normaliseObject(args, plan), context, info);
}

/** Wraps every field that takes an id argument (directly or inside an input) so it sees lower-case UUIDs. */
export function normaliseIdsTransformer(schema: GraphQLSchema): GraphQLSchema {
  const inputPlans = new Map<GraphQLInputObjectType, Plan | null>();
  // Plans are worked out on the incoming schema's input types (mapSchema rebuilds them with the same fields).
  return mapSchema(schema, {
    [MapperKind.OBJECT_FIELD]: (fieldConfig) => {
      const plan = fieldConfig.args ? planOfArgs(fieldConfig.args, inputPlans) : undefined;
      if (!plan) return fieldConfig;
      return {
        ...fieldConfig,
        resolve: normalising(fieldConfig.resolve ?? defaultFieldResolver, plan),
        ...(fieldConfig.subscribe ? { subscribe: normalising(fieldConfig.subscribe, plan) } : {}),
      };
    },
  });
}
