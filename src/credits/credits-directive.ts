/**
 * The @credits directive: its definition and its schema transformer, built by one factory
 * (DESIGN.md, convention 1). The directive's arguments are read and validated once, when the schema
 * is transformed: an unknown credit type or estimator stops the server at start, naming the field.
 * It works on any schema that declares the directive, whether built by type-graphql or from SDL.
 */
import {
  DirectiveLocation,
  GraphQLDirective,
  GraphQLInt,
  GraphQLNonNull,
  GraphQLString,
  defaultFieldResolver,
  getNamedType,
  type GraphQLFieldConfig,
  type GraphQLFieldResolver,
  type GraphQLSchema,
} from "graphql";
import { MapperKind, getDirective, mapSchema } from "@graphql-tools/utils";
import type { Estimator } from "./estimators/estimator.js";
import type { MeteredField } from "./metered-field.js";
import type { Meter } from "./meters/meter.js";

export const CREDITS_DIRECTIVE_NAME = "credits";

export const creditsDirective = new GraphQLDirective({
  name: CREDITS_DIRECTIVE_NAME,
  description:
    "Charges prepaid credits for every call of the field it marks. The server prices\n" +
    "the call (fixed `amount`, or the named `estimator` over the field's arguments),\n" +
    "holds that price on the caller's subscription atomically before the resolver runs\n" +
    "(all metered fields of one operation together), settles at the metered actual cost\n" +
    "when the field has a `meter`, refunds the charge when the resolver fails with a\n" +
    "system error or its result never reaches the client, and reports the charge and the\n" +
    "remaining balance in the response's `extensions.credits`.",
  locations: [DirectiveLocation.FIELD_DEFINITION],
  args: {
    type: { type: new GraphQLNonNull(GraphQLString), description: "Credit type debited; one of `Query.creditTypes`." },
    amount: { type: GraphQLInt, description: "Fixed price in credits, used when no estimator is named." },
    estimator: { type: GraphQLString, description: "Registered estimator that prices the call from its arguments." },
    meter: {
      type: GraphQLString,
      description:
        "Registered meter that measures the call's actual cost from its arguments and result.\n" +
        "The price is held before the resolver runs; on success the call settles at\n" +
        "max(1, min(actual, held)) and the rest is released (a RELEASE ledger entry).",
    },
  },
});

/** SDL of the directive, for schemas written by hand. */
export const CREDITS_DIRECTIVE_SDL = `directive @credits(type: String!, amount: Int, estimator: String, meter: String) on FIELD_DEFINITION`;

export interface CreditsDirectiveOptions {
  creditTypes: ReadonlySet<string>;
  estimators: ReadonlyMap<string, Estimator>;
  meters: ReadonlyMap<string, Meter>;
  /**
   * The host names the subscription to charge from its context (a library host's `subscription(ctx)`
   * or its own request state): a metered field may then go without a subscriptionId argument.
   */
  subscriptionFromContext?: boolean;
}

export class CreditsDirectiveError extends Error {
  override name = "CreditsDirectiveError";
}

/**
 * A field's directives must be declared, with only the arguments their declaration has. type-graphql
 * puts a `@Directive("…")` string on the field as it is, unchecked: an outside audit wrote
 * `@credit(type: "email", …)` (no s), and the field ran free and without a token, missing from the
 * catalog; `meters: "email"` was dropped, and the call paid its whole hold. Refused at start instead,
 * naming the field, as every other @credits mistake is.
 */
function refuseUndeclaredDirectives(schema: GraphQLSchema, fieldConfig: GraphQLFieldConfig<unknown, unknown>, coordinate: string): void {
  for (const use of fieldConfig.astNode?.directives ?? []) {
    const name = use.name.value;
    const declared = schema.getDirective(name);
    if (!declared) {
      const hint = name !== CREDITS_DIRECTIVE_NAME && name.toLowerCase().startsWith("credit") ? ` (did you mean @${CREDITS_DIRECTIVE_NAME}?)` : "";
      throw new CreditsDirectiveError(`${coordinate}: the directive @${name} is not declared in the schema${hint}`);
    }
    for (const argument of use.arguments ?? []) {
      if (!declared.args.some((known) => known.name === argument.name.value)) {
        throw new CreditsDirectiveError(
          `${coordinate}: @${name} has no argument "${argument.name.value}" (its arguments: ${declared.args.map((known) => known.name).join(", ")})`,
        );
      }
    }
  }
}

/** Reads and validates one field's @credits, or returns undefined when it has none. */
function readMeteredField(
  schema: GraphQLSchema,
  fieldConfig: GraphQLFieldConfig<unknown, unknown>,
  fieldName: string,
  typeName: string,
  options: CreditsDirectiveOptions,
): MeteredField | undefined {
  const coordinate = `${typeName}.${fieldName}`;
  refuseUndeclaredDirectives(schema, fieldConfig, coordinate);
  const uses = getDirective(schema, fieldConfig, CREDITS_DIRECTIVE_NAME);
  if (!uses || uses.length === 0) return undefined;
  if (uses.length > 1) throw new CreditsDirectiveError(`${coordinate}: @credits may be used once per field`);
  const { type, amount, estimator: estimatorName, meter: meterName } = uses[0] as {
    type?: string;
    amount?: number | null;
    estimator?: string | null;
    meter?: string | null;
  };

  if (typeof type !== "string" || !options.creditTypes.has(type)) {
    throw new CreditsDirectiveError(
      `${coordinate}: @credits type "${type}" is not a known credit type (${[...options.creditTypes].join(", ")})`,
    );
  }
  if (amount !== undefined && amount !== null && (!Number.isInteger(amount) || amount < 1)) {
    throw new CreditsDirectiveError(`${coordinate}: @credits amount must be a whole number of at least 1, got ${amount}`);
  }
  let estimator: Estimator | undefined;
  if (estimatorName !== undefined && estimatorName !== null) {
    estimator = options.estimators.get(estimatorName);
    if (!estimator) {
      throw new CreditsDirectiveError(
        `${coordinate}: @credits estimator "${estimatorName}" is not registered (${[...options.estimators.keys()].join(", ")})`,
      );
    }
  }
  let meter: Meter | undefined;
  if (meterName !== undefined && meterName !== null) {
    meter = options.meters.get(meterName);
    if (!meter) {
      throw new CreditsDirectiveError(
        `${coordinate}: @credits meter "${meterName}" is not registered (${[...options.meters.keys()].join(", ")})`,
      );
    }
  }
  if (estimator === undefined && (amount === undefined || amount === null)) {
    throw new CreditsDirectiveError(`${coordinate}: @credits needs an amount or an estimator`);
  }
  // The charge path reads the balance to charge from this argument: without it every call would be
  // refused at run time ("needs a subscriptionId"), so the field could never be called.
  const subscriptionIdArg = fieldConfig.args?.subscriptionId;
  const argType = subscriptionIdArg ? getNamedType(subscriptionIdArg.type).name : undefined;
  if (argType !== "ID" && argType !== "String" && !(argType === undefined && options.subscriptionFromContext)) {
    throw new CreditsDirectiveError(
      `${coordinate}: a field with @credits needs a subscriptionId argument (ID!), the subscription whose balance it charges` +
        (argType ? `; it has one of type ${argType}` : ""),
    );
  }
  return {
    coordinate,
    typeName,
    fieldName,
    creditType: type,
    amount: amount ?? undefined,
    estimator,
    meter,
    description: fieldConfig.description ?? undefined,
  };
}

/** Every metered field of a schema, validated. Throws CreditsDirectiveError naming the first bad field. */
export function readMeteredFields(schema: GraphQLSchema, options: CreditsDirectiveOptions): MeteredField[] {
  const found: MeteredField[] = [];
  mapSchema(schema, {
    [MapperKind.OBJECT_FIELD]: (fieldConfig, fieldName, typeName) => {
      const field = readMeteredField(schema, fieldConfig, fieldName, typeName, options);
      if (field) found.push(field);
      return fieldConfig;
    },
  });
  return found.sort((a, b) => a.coordinate.localeCompare(b.coordinate));
}

export type MeteredResolverWrapper = (
  field: MeteredField,
  resolve: GraphQLFieldResolver<unknown, unknown>,
) => GraphQLFieldResolver<unknown, unknown>;

/**
 * Builds the transformer: every field carrying @credits gets its resolver wrapped by `wrap`, which
 * receives the already validated MeteredField, so nothing is read or checked per request.
 */
export function creditsDirectiveTransformer(options: CreditsDirectiveOptions & { wrap: MeteredResolverWrapper }) {
  return (schema: GraphQLSchema): GraphQLSchema =>
    mapSchema(schema, {
      [MapperKind.OBJECT_FIELD]: (fieldConfig, fieldName, typeName) => {
        const field = readMeteredField(schema, fieldConfig, fieldName, typeName, options);
        if (!field) return fieldConfig;
        return { ...fieldConfig, resolve: options.wrap(field, fieldConfig.resolve ?? defaultFieldResolver) };
      },
    });
}
