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
  GraphQLSchema,
  GraphQLString,
  defaultFieldResolver,
  getNamedType,
  isEnumType,
  isInputObjectType,
  isInterfaceType,
  isIntrospectionType,
  isObjectType,
  isScalarType,
  isUnionType,
  type ConstDirectiveNode,
  type GraphQLFieldConfig,
  type GraphQLFieldResolver,
  type GraphQLNamedType,
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
 * The library's directives, declared by credits.typeDefs (SDL) or by buildSchema's `directives`
 * (type-graphql). "rateLimit" is RATE_LIMIT_DIRECTIVE_NAME, written out: that module imports this one.
 */
const LIBRARY_DIRECTIVES = new Set([CREDITS_DIRECTIVE_NAME, "rateLimit"]);

/** What to do about an undeclared directive: how to declare the library's, or the @credits a typo meant. */
function undeclaredHint(name: string): string {
  if (LIBRARY_DIRECTIVES.has(name)) {
    return (
      ": declare it, with credits.typeDefs in your SDL, or with type-graphql" +
      " buildSchema({ directives: [...specifiedDirectives, creditsDirective, rateLimitDirective], … })"
    );
  }
  return name.toLowerCase().startsWith("credit") ? ` (did you mean @${CREDITS_DIRECTIVE_NAME}?)` : "";
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
    if (!declared) throw new CreditsDirectiveError(`${coordinate}: the directive @${name} is not declared in the schema${undeclaredHint(name)}`);
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

/** Where a directive is used outside a field of an object type, as an error names it. */
interface DirectivePlace {
  place: string;
  location: DirectiveLocation;
  directives: readonly ConstDirectiveNode[];
  /** Set for a field of an interface: the interface. */
  interfaceName?: string;
  /** Set for a field of the schema's subscription type. */
  subscriptionField?: boolean;
}

/** The directives of a definition and of its extensions (`extend type … @credits`). */
function directivesOf(node: { astNode?: { directives?: readonly ConstDirectiveNode[] } | null; extensionASTNodes?: readonly { directives?: readonly ConstDirectiveNode[] }[] }): ConstDirectiveNode[] {
  return [...(node.astNode?.directives ?? []), ...(node.extensionASTNodes ?? []).flatMap((n) => n.directives ?? [])];
}

function typeLocation(type: GraphQLNamedType): DirectiveLocation {
  if (isObjectType(type)) return DirectiveLocation.OBJECT;
  if (isInterfaceType(type)) return DirectiveLocation.INTERFACE;
  if (isUnionType(type)) return DirectiveLocation.UNION;
  if (isEnumType(type)) return DirectiveLocation.ENUM;
  if (isInputObjectType(type)) return DirectiveLocation.INPUT_OBJECT;
  return DirectiveLocation.SCALAR;
}

/**
 * The fields of the schema's subscription type: object fields, but their resolver runs once per event
 * (graphql-ws), with no operation around it to hold and settle, so @credits there can never charge.
 */
function* subscriptionFields(schema: GraphQLSchema): Generator<DirectivePlace> {
  const type = schema.getSubscriptionType();
  if (!type) return;
  for (const field of Object.values(type.getFields())) {
    const place = `${type.name}.${field.name}`;
    yield { place, location: DirectiveLocation.FIELD_DEFINITION, directives: directivesOf(field), subscriptionField: true };
  }
}

/** Every place of a schema a directive can be used, but the fields of object types (those of the subscription type included). */
function* placesOutsideObjectFields(schema: GraphQLSchema): Generator<DirectivePlace> {
  yield { place: "the schema", location: DirectiveLocation.SCHEMA, directives: directivesOf(schema) };
  yield* subscriptionFields(schema);
  for (const type of Object.values(schema.getTypeMap())) {
    if (isIntrospectionType(type)) continue;
    yield { place: `the type ${type.name}`, location: typeLocation(type), directives: directivesOf(type) };
    if (isObjectType(type) || isInterfaceType(type)) {
      for (const field of Object.values(type.getFields())) {
        if (isInterfaceType(type)) {
          const place = `the field ${type.name}.${field.name} of an interface`;
          yield { place, location: DirectiveLocation.FIELD_DEFINITION, directives: directivesOf(field), interfaceName: type.name };
        }
        for (const arg of field.args) {
          yield { place: `the argument ${type.name}.${field.name}(${arg.name}:)`, location: DirectiveLocation.ARGUMENT_DEFINITION, directives: directivesOf(arg) };
        }
      }
    } else if (isInputObjectType(type)) {
      for (const field of Object.values(type.getFields())) {
        yield { place: `the input field ${type.name}.${field.name}`, location: DirectiveLocation.INPUT_FIELD_DEFINITION, directives: directivesOf(field) };
      }
    } else if (isEnumType(type)) {
      for (const value of type.getValues()) {
        yield { place: `the enum value ${type.name}.${value.name}`, location: DirectiveLocation.ENUM_VALUE, directives: directivesOf(value) };
      }
    }
  }
}

/** Why the directive does nothing there, and where to put it instead. */
function misplacedMessage(name: string, place: string, { interfaceName, subscriptionField }: Pick<DirectivePlace, "interfaceName" | "subscriptionField">): string {
  if (subscriptionField) return `@${name} on ${place}: subscription fields cannot be metered; meter the mutation or query that does the work`;
  if (interfaceName !== undefined) return `@${name} on ${place}: put it on that field of each object type that implements ${interfaceName}`;
  return `@${name} on ${place}: put it on a field (a mutation, a query, or a field of an object type)`;
}

/**
 * `@credits` and `@rateLimit` only act on the fields of object types. graphql's buildSchema refuses
 * them elsewhere ("may not be used on OBJECT"), but type-graphql does not check directive locations:
 * an outside audit's `@Directive('@credits(…)')` on an @ObjectType class (or an @InputType field, an
 * argument) built fine, and the operation ran free. Refused at transform instead, naming the place.
 * @credits is refused on an interface's field too (only its implementations' fields run), and on a
 * field of the subscription type (accepted, it held and refunded over HTTP, and answered every
 * graphql-ws event a masked 500); a @rateLimit is refused only where its declaration does not allow
 * it, as a host's own may differ.
 */
export function refuseMisplacedDirectives(schema: GraphQLSchema, names: readonly string[]): void {
  for (const { place, location, directives, interfaceName, subscriptionField } of placesOutsideObjectFields(schema)) {
    for (const use of directives) {
      const name = use.name.value;
      if (!names.includes(name)) continue;
      const declared = schema.getDirective(name);
      const allowed = name !== CREDITS_DIRECTIVE_NAME && (declared == null || declared.locations.includes(location));
      if (allowed) continue;
      throw new CreditsDirectiveError(misplacedMessage(name, place, { interfaceName, subscriptionField }));
    }
  }
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
 * The resolvers the transformer wrapped (by any credits core of the process), and the mark it leaves
 * in the schema's extensions (kept by mapSchema and toConfig, so by a host's later transforms that
 * wrap resolvers again). A schema transformed twice wraps each metered field twice: a field held with
 * its operation only ran its hold twice, but one held alone (inside a list) was held and charged once
 * per wrapper (an outside audit: 7 charges instead of 4).
 */
const wrappedResolvers = new WeakSet<GraphQLFieldResolver<unknown, unknown>>();
const TRANSFORMED_MARK = "graphqlCreditsTransformed";

/** Refuses a schema a credits transform already wrapped: transform it once. */
export function refuseTransformedSchema(schema: GraphQLSchema): void {
  const wrapped =
    schema.extensions?.[TRANSFORMED_MARK] === true ||
    Object.values(schema.getTypeMap()).some(
      (type) => isObjectType(type) && Object.values(type.getFields()).some((field) => field.resolve !== undefined && wrappedResolvers.has(field.resolve)),
    );
  if (wrapped) {
    throw new CreditsDirectiveError(
      "this schema was already transformed by credits.transform: call it once, on the schema as built (transforming it again would charge fields twice)",
    );
  }
}

/**
 * Builds the transformer: every field carrying @credits gets its resolver wrapped by `wrap`, which
 * receives the already validated MeteredField, so nothing is read or checked per request.
 */
export function creditsDirectiveTransformer(options: CreditsDirectiveOptions & { wrap: MeteredResolverWrapper }) {
  return (schema: GraphQLSchema): GraphQLSchema => {
    refuseTransformedSchema(schema);
    const transformed = mapSchema(schema, {
      [MapperKind.OBJECT_FIELD]: (fieldConfig, fieldName, typeName) => {
        const field = readMeteredField(schema, fieldConfig, fieldName, typeName, options);
        if (!field) return fieldConfig;
        const resolve = options.wrap(field, fieldConfig.resolve ?? defaultFieldResolver);
        wrappedResolvers.add(resolve);
        return { ...fieldConfig, resolve };
      },
    });
    const config = transformed.toConfig();
    return new GraphQLSchema({ ...config, extensions: { ...config.extensions, [TRANSFORMED_MARK]: true } });
  };
}
