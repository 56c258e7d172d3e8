/**
 * The arguments of @credits fields that the charge path reads (DESIGN.md, "The charge path"):
 * - `subscriptionId`, the subscription whose balance is charged: an ID. `ID!`, or `ID` when a null
 *   one may charge the subscription the host's `subscription(ctx)` names (without it, a null one is
 *   refused 400 BAD_USER_INPUT "needs a subscriptionId"). A String, an Int or a list is refused at
 *   transform, naming the field: its values would be read as ids they are not.
 * - `creditAmount`, the admin's price override (steps 3 and 5): every @credits field takes
 *   `creditAmount: Int`. This server declares it on each of its operations; a host's SDL need not, so
 *   the transform adds it to every @credits field that lacks it. Given by an admin it sets the price
 *   (0 allowed); given by anyone else it is refused with FORBIDDEN before anything is charged. A host
 *   that declares it must declare that same optional Int: another type would refuse a non-admin's
 *   value as BAD_USER_INPUT (GraphQL's coercion) before the charge path answers FORBIDDEN, and `Int!`
 *   or a default would make every non-admin call FORBIDDEN.
 */
import {
  GraphQLID,
  GraphQLInt,
  GraphQLNonNull,
  getNullableType,
  isListType,
  isNonNullType,
  isScalarType,
  type GraphQLFieldConfig,
  type GraphQLInputType,
  type GraphQLSchema,
} from "graphql";
import { MapperKind, getDirective, mapSchema } from "@graphql-tools/utils";
import {
  CREDITS_DIRECTIVE_NAME,
  CreditsDirectiveError,
  readMeteredFields,
  refuseMisplacedDirectives,
  type CreditsDirectiveOptions,
} from "../credits/credits-directive.js";
import { RATE_LIMIT_DIRECTIVE_NAME } from "../ratelimit/rate-limit-directive.js";
import type { MeteredField } from "../credits/metered-field.js";

export const CREDIT_AMOUNT_ARGUMENT = "creditAmount";
const SUBSCRIPTION_ID_ARGUMENT = "subscriptionId";

const DESCRIPTION = "Admins only: charge exactly this many credits (0 or more) instead of the computed price.";

const isMetered = (schema: GraphQLSchema, fieldConfig: GraphQLFieldConfig<unknown, unknown>) =>
  (getDirective(schema, fieldConfig, CREDITS_DIRECTIVE_NAME)?.length ?? 0) > 0;

/** The scalar `name`, nullable or not, never inside a list. */
function isScalarNamed(type: GraphQLInputType, name: string): boolean {
  const nullable = getNullableType(type);
  return !isListType(nullable) && isScalarType(nullable) && nullable.name === name;
}

/**
 * Refuses, naming the field, a @credits field whose subscriptionId is not an ID (or that has none,
 * when the host names no subscription from its context) and a declared creditAmount that is not the
 * optional Int. Run on the host's schema before addCreditAmountArgument.
 */
function checkChargeArguments(schema: GraphQLSchema, subscriptionFromContext: boolean | undefined): void {
  mapSchema(schema, {
    [MapperKind.OBJECT_FIELD]: (fieldConfig, fieldName, typeName) => {
      if (!isMetered(schema, fieldConfig)) return fieldConfig;
      const coordinate = `${typeName}.${fieldName}`;
      const subscriptionId = fieldConfig.args?.[SUBSCRIPTION_ID_ARGUMENT];
      if (subscriptionId ? !isScalarNamed(subscriptionId.type, "ID") : !subscriptionFromContext) {
        throw new CreditsDirectiveError(
          `${coordinate}: a field with @credits needs a subscriptionId argument of type ID! (or ID), the subscription whose balance it charges` +
            (subscriptionId
              ? `; it has one of type ${String(subscriptionId.type)}`
              : " (or createCredits' subscription(ctx), naming it from your context)"),
        );
      }
      const creditAmount = fieldConfig.args?.[CREDIT_AMOUNT_ARGUMENT];
      if (creditAmount) {
        const hasDefault = creditAmount.defaultValue !== undefined && creditAmount.defaultValue !== null;
        if (isNonNullType(creditAmount.type) || !isScalarNamed(creditAmount.type, "Int") || hasDefault) {
          const declared = `${String(creditAmount.type)}${hasDefault ? ` = ${JSON.stringify(creditAmount.defaultValue)}` : ""}`;
          throw new CreditsDirectiveError(
            `${coordinate}: creditAmount, the admin's price, must be declared \`creditAmount: Int\` (optional, without a default: anyone but an admin who gives it is refused 403 FORBIDDEN), or left out for transform to add; it is declared \`creditAmount: ${declared}\``,
          );
        }
      }
      return fieldConfig;
    },
  });
}

/**
 * The metered fields of the host's schema (before addCreditAmountArgument), validated: a @credits or
 * @rateLimit anywhere but on a field first, then each directive's own mistakes (an unknown credit type, estimator or meter), then the arguments
 * (checkChargeArguments), so that every subscriptionId mistake is said one way.
 */
export function readCheckedMeteredFields(schema: GraphQLSchema, options: CreditsDirectiveOptions): MeteredField[] {
  // A directive put where it does nothing (type-graphql lets @Directive go on a class, an input field …).
  refuseMisplacedDirectives(schema, [CREDITS_DIRECTIVE_NAME, RATE_LIMIT_DIRECTIVE_NAME]);
  // The directives, read as if every metered field had a valid subscriptionId: its own check comes next.
  const probe = mapSchema(schema, {
    [MapperKind.OBJECT_FIELD]: (fieldConfig) =>
      isMetered(schema, fieldConfig)
        ? { ...fieldConfig, args: { ...fieldConfig.args, [SUBSCRIPTION_ID_ARGUMENT]: { type: new GraphQLNonNull(GraphQLID) } } }
        : fieldConfig,
  });
  const fields = readMeteredFields(probe, options);
  checkChargeArguments(schema, options.subscriptionFromContext);
  return fields;
}

export function addCreditAmountArgument(schema: GraphQLSchema): GraphQLSchema {
  return mapSchema(schema, {
    [MapperKind.OBJECT_FIELD]: (fieldConfig) => {
      if (!isMetered(schema, fieldConfig)) return fieldConfig;
      if (fieldConfig.args && CREDIT_AMOUNT_ARGUMENT in fieldConfig.args) return fieldConfig;
      return { ...fieldConfig, args: { ...fieldConfig.args, [CREDIT_AMOUNT_ARGUMENT]: { type: GraphQLInt, description: DESCRIPTION } } };
    },
  });
}
