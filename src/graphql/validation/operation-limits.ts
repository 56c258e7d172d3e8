/**
 * The limits every operation must respect before anything runs: depth, aliases and directives
 * (GraphQL Armor's rules) and metered fields (ours). They are plain validation rules, so Apollo
 * runs them with GraphQL's own validation, and a refused operation is answered like any invalid
 * document: GRAPHQL_VALIDATION_FAILED, which formatError turns into BAD_USER_INPUT with HTTP 400.
 */
import { GraphQLError, type ValidationContext, type ValidationRule } from "graphql";
import { maxAliasesRule } from "@escape.tech/graphql-armor-max-aliases";
import { maxDepthRule } from "@escape.tech/graphql-armor-max-depth";
import { maxDirectivesRule } from "@escape.tech/graphql-armor-max-directives";
import type { MeteredField } from "../../credits/metered-field.js";
import { maxMeteredFieldsRule } from "./max-metered-fields.js";

export interface OperationLimits {
  /** Deepest field nesting allowed (fragments do not add depth; `__schema` introspection is exempt). */
  maxDepth: number;
  /** Aliases allowed in one operation, `__typename` aliases included. */
  maxAliases: number;
  /** Directive uses allowed in one operation. */
  maxDirectives: number;
  /** Metered (@credits) selections allowed in one operation. */
  maxMeteredFields: number;
}

/**
 * GraphQL Armor's rules throw their error out of validate() by default, which Apollo answers with a
 * masked 500. With `propagateOnRejection: false` they hand it to `onReject` instead, where it is
 * reported like any validation error. Their messages start with "Syntax Error: "; the operation is
 * well formed, only too large, so that prefix is dropped.
 */
const reportRejection = {
  propagateOnRejection: false,
  exposeLimits: true,
  onReject: [
    (context: ValidationContext | null, error: GraphQLError): void => {
      const message = error.message.replace(/^Syntax Error: /, "");
      context?.reportError(new GraphQLError(`${message} Simplify the operation or split it into several requests.`));
    },
  ],
};

export function operationLimitRules(limits: OperationLimits, meteredFields: readonly MeteredField[]): ValidationRule[] {
  return [
    maxDepthRule({ ...reportRejection, n: limits.maxDepth, flattenFragments: true, ignoreIntrospection: true }),
    // Armor lets `__typename` aliases through uncounted by default (allowList: ["__typename"]); they
    // cost no resolver, but thousands of them still cost parsing, validation and a response of
    // thousands of keys. Every alias counts here, as MAX_ALIASES promises.
    maxAliasesRule({ ...reportRejection, n: limits.maxAliases, allowList: [] }),
    maxDirectivesRule({ ...reportRejection, n: limits.maxDirectives }),
    maxMeteredFieldsRule({
      meteredCoordinates: new Set(meteredFields.map((field) => field.coordinate)),
      max: limits.maxMeteredFields,
    }),
  ];
}
