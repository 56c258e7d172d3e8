/**
 * The admin's price override (DESIGN.md, "The charge path", steps 3 and 5): every @credits field
 * takes `creditAmount: Int`. This server declares it on each of its operations; a host's SDL need
 * not, so the transform adds it to every @credits field that lacks it. Given by an admin it sets the
 * price (0 allowed); given by anyone else it is refused with FORBIDDEN before anything is charged.
 */
import { GraphQLInt, type GraphQLSchema } from "graphql";
import { MapperKind, getDirective, mapSchema } from "@graphql-tools/utils";
import { CREDITS_DIRECTIVE_NAME } from "../credits/credits-directive.js";

export const CREDIT_AMOUNT_ARGUMENT = "creditAmount";

const DESCRIPTION = "Admins only: charge exactly this many credits (0 or more) instead of the computed price.";

export function addCreditAmountArgument(schema: GraphQLSchema): GraphQLSchema {
  return mapSchema(schema, {
    [MapperKind.OBJECT_FIELD]: (fieldConfig) => {
      if ((getDirective(schema, fieldConfig, CREDITS_DIRECTIVE_NAME)?.length ?? 0) === 0) return fieldConfig;
      if (fieldConfig.args && CREDIT_AMOUNT_ARGUMENT in fieldConfig.args) return fieldConfig;
      return { ...fieldConfig, args: { ...fieldConfig.args, [CREDIT_AMOUNT_ARGUMENT]: { type: GraphQLInt, description: DESCRIPTION } } };
    },
  });
}
