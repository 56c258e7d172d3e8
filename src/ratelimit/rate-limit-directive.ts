/**
 * The @rateLimit directive: its definition and its schema transformer, in one module (DESIGN.md,
 * convention 1), with graphql-rate-limit's arguments and meaning. The arguments are read and
 * validated once, when the schema is transformed: a bad window ("5 parsecs"), a `max` below 1 or an
 * identityArgs/arrayLengthField path the field does not have stops the server at start, naming the
 * field. Works on any schema that declares the directive, whether built by type-graphql or from SDL.
 *
 * Fields that also carry @credits are left alone here: the charge wrapper checks their limit itself
 * at step 4 of the charge path (after authentication, validation and authorization, before the
 * debit), through the RateLimitGate.
 */
import {
  DirectiveLocation,
  GraphQLDirective,
  GraphQLInt,
  GraphQLList,
  GraphQLString,
  defaultFieldResolver,
  getNamedType,
  getNullableType,
  isInputObjectType,
  isLeafType,
  isListType,
  type GraphQLArgumentConfig,
  type GraphQLFieldConfig,
  type GraphQLFieldResolver,
  type GraphQLInputType,
  type GraphQLResolveInfo,
  type GraphQLSchema,
} from "graphql";
import { MapperKind, getDirective, mapSchema } from "@graphql-tools/utils";
import { parseDurationMs } from "../util/duration.js";
import { CREDITS_DIRECTIVE_NAME } from "../credits/credits-directive.js";
import { LIBRARY_DEFAULT_MAX, LIBRARY_DEFAULT_WINDOW, type RateLimitRule } from "./rate-limit-rule.js";

export const RATE_LIMIT_DIRECTIVE_NAME = "rateLimit";

export const rateLimitDirective = new GraphQLDirective({
  name: RATE_LIMIT_DIRECTIVE_NAME,
  description: "Limits how often one caller may call the field within a time window.",
  locations: [DirectiveLocation.FIELD_DEFINITION],
  args: {
    max: { type: GraphQLInt, description: "Calls allowed per window." },
    window: { type: GraphQLString, description: 'Window length, e.g. "1m", "10s".' },
    message: { type: GraphQLString, description: "Message of the RATE_LIMITED error." },
    identityArgs: { type: new GraphQLList(GraphQLString), description: 'Arguments that make separate counters, e.g. ["subscriptionId"].' },
    arrayLengthField: { type: GraphQLString, description: "Counts the length of this list argument instead of one per call." },
  },
});

/** SDL of the directive, for schemas written by hand. */
export const RATE_LIMIT_DIRECTIVE_SDL =
  "directive @rateLimit(max: Int, window: String, message: String, identityArgs: [String], arrayLengthField: String) on FIELD_DEFINITION";

export class RateLimitDirectiveError extends Error {
  override name = "RateLimitDirectiveError";
}

interface RateLimitDirectiveArgs {
  max?: number | null;
  window?: string | null;
  message?: string | null;
  identityArgs?: readonly (string | null)[] | null;
  arrayLengthField?: string | null;
}

/** The input type an argument path ("input.records") leads to, or undefined when the field has no such path. */
function argumentPathType(
  args: Record<string, GraphQLArgumentConfig> | undefined,
  path: string,
): GraphQLInputType | undefined {
  const [first, ...rest] = path.split(".");
  let type: GraphQLInputType | undefined = args?.[first]?.type;
  for (const segment of rest) {
    if (!type) return undefined;
    const named = getNamedType(type);
    // A path may only step into input objects, not through lists (as lodash.get would by index).
    if (!isInputObjectType(named) || isListType(getNullableType(type))) return undefined;
    type = named.getFields()[segment]?.type;
  }
  return type;
}

/** Reads and validates one field's @rateLimit, or returns undefined when it has none. */
function readRateLimitRule(
  schema: GraphQLSchema,
  fieldConfig: GraphQLFieldConfig<unknown, unknown>,
  fieldName: string,
  typeName: string,
): RateLimitRule | undefined {
  const uses = getDirective(schema, fieldConfig, RATE_LIMIT_DIRECTIVE_NAME);
  if (!uses || uses.length === 0) return undefined;
  const coordinate = `${typeName}.${fieldName}`;
  if (uses.length > 1) throw new RateLimitDirectiveError(`${coordinate}: @rateLimit may be used once per field`);
  const { max, window, message, identityArgs, arrayLengthField } = uses[0] as RateLimitDirectiveArgs;

  if (max !== undefined && max !== null && (!Number.isInteger(max) || max < 1)) {
    throw new RateLimitDirectiveError(`${coordinate}: @rateLimit max must be a whole number of at least 1, got ${max}`);
  }
  const windowText = window ?? LIBRARY_DEFAULT_WINDOW;
  const windowMs = parseDurationMs(windowText);
  if (windowMs === undefined) {
    throw new RateLimitDirectiveError(
      `${coordinate}: @rateLimit window "${windowText}" is not a duration such as "500ms", "10s", "1m", "1h" or "1d"`,
    );
  }
  const identityPaths: string[] = [];
  for (const path of identityArgs ?? []) {
    const type = path ? argumentPathType(fieldConfig.args, path) : undefined;
    if (!path || !type || !isLeafType(getNullableType(type))) {
      throw new RateLimitDirectiveError(
        `${coordinate}: @rateLimit identityArgs entry "${path}" must name a scalar or enum argument of the field (or of its input objects, "input.field")`,
      );
    }
    identityPaths.push(path);
  }
  if (arrayLengthField !== undefined && arrayLengthField !== null) {
    const type = arrayLengthField ? argumentPathType(fieldConfig.args, arrayLengthField) : undefined;
    if (!type || !isListType(getNullableType(type))) {
      throw new RateLimitDirectiveError(
        `${coordinate}: @rateLimit arrayLengthField "${arrayLengthField}" must name a list argument of the field (or of its input objects, "input.records")`,
      );
    }
  }
  return {
    coordinate,
    max: max ?? LIBRARY_DEFAULT_MAX,
    window: windowText,
    windowMs,
    // graphql-rate-limit treats an empty message as none.
    message: message || undefined,
    identityArgs: identityPaths,
    arrayLengthField: arrayLengthField ?? undefined,
    source: "directive",
  };
}

/**
 * Every @rateLimit of a schema, validated, by schema coordinate — metered fields included (the
 * gate of the charge path reads their rules from here). Throws RateLimitDirectiveError naming the
 * first bad field.
 */
export function readRateLimitRules(schema: GraphQLSchema): Map<string, RateLimitRule> {
  const rules = new Map<string, RateLimitRule>();
  mapSchema(schema, {
    [MapperKind.OBJECT_FIELD]: (fieldConfig, fieldName, typeName) => {
      const rule = readRateLimitRule(schema, fieldConfig, fieldName, typeName);
      if (rule) rules.set(rule.coordinate, rule);
      return fieldConfig;
    },
  });
  return rules;
}

/** Checks one call against a rule: resolves when the call may run, throws RATE_LIMITED when not. */
export type RateLimitCheck = (
  rule: RateLimitRule,
  args: Record<string, unknown>,
  context: unknown,
  info: GraphQLResolveInfo,
) => Promise<void>;

export interface RateLimitDirectiveOptions {
  check: RateLimitCheck;
}

function isMetered(schema: GraphQLSchema, fieldConfig: GraphQLFieldConfig<unknown, unknown>): boolean {
  return (getDirective(schema, fieldConfig, CREDITS_DIRECTIVE_NAME)?.length ?? 0) > 0;
}

/**
 * Builds the transformer: every field carrying @rateLimit and not @credits gets its resolver
 * wrapped so that each call (each alias is a call) is checked before the resolver runs. Apply it
 * after the credits transformer; it leaves the metered fields' wrappers as they are.
 */
export function rateLimitDirectiveTransformer(options: RateLimitDirectiveOptions) {
  return (schema: GraphQLSchema): GraphQLSchema =>
    mapSchema(schema, {
      [MapperKind.OBJECT_FIELD]: (fieldConfig, fieldName, typeName) => {
        const rule = readRateLimitRule(schema, fieldConfig, fieldName, typeName);
        if (!rule || isMetered(schema, fieldConfig)) return fieldConfig;
        const resolve: GraphQLFieldResolver<unknown, unknown> = fieldConfig.resolve ?? defaultFieldResolver;
        const limited: GraphQLFieldResolver<unknown, unknown> = async (source, args, context, info) => {
          await options.check(rule, args as Record<string, unknown>, context, info);
          return resolve(source, args, context, info);
        };
        return { ...fieldConfig, resolve: limited };
      },
    });
}
