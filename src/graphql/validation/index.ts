/**
 * Everything a request must pass before it runs, as Apollo takes it: parse options (the token
 * limit), validation rules (run with GraphQL's own) and the request plugins that check what rules
 * cannot see (variables, the transport), among them the document budget (document-budget.ts),
 * walked before graphql validates and reported by refusedDocumentRule, and the page budget
 * (page-budget.ts), which needs the operation's variables and so runs once the operation is resolved.
 */
import type { ParseOptions, ValidationRule } from "graphql";
import type { MeteredField } from "../../credits/metered-field.js";
import { documentParseOptions } from "./document-tokens.js";
import { introspectionDepthRule } from "./introspection-depth.js";
import { knownOperationTypesRule } from "./known-operation-types.js";
import { noNulInStringLiteralsRule } from "./nul-characters.js";
import { operationLimitRules, type OperationLimits } from "./operation-limits.js";
import { refusedDocumentRule } from "./subscription-root-conditions.js";

export { refuseNulVariablesPlugin } from "./nul-characters.js";
export { refuseHttpSubscriptionsPlugin } from "./http-subscriptions.js";
export { refusedDocumentsPlugin } from "./subscription-root-conditions.js";
export { pageBudgetPlugin } from "./page-budget.js";
export type { OperationLimits } from "./operation-limits.js";

/** The operation limits, and MAX_DOCUMENT_TOKENS: the most lexical tokens a document may have. */
export interface DocumentLimits extends OperationLimits {
  maxTokens: number;
}

/**
 * How a document is parsed and validated before it runs. Apollo takes both for every request, and
 * creditPreview takes the same object for the documents it prices, so a preview refuses exactly what
 * the request would refuse, with the same words.
 */
export interface DocumentChecks {
  /** graphql's parse options: the token limit, applied while parsing. */
  readonly parseOptions: ParseOptions;
  /** Rules run with graphql's own validation (specifiedRules). */
  readonly validationRules: readonly ValidationRule[];
}

export function requestDocumentChecks(limits: DocumentLimits, meteredFields: readonly MeteredField[]): DocumentChecks {
  return {
    parseOptions: documentParseOptions(limits.maxTokens),
    validationRules: requestValidationRules(limits, meteredFields),
  };
}

export function requestValidationRules(limits: OperationLimits, meteredFields: readonly MeteredField[]): ValidationRule[] {
  return [...operationLimitRules(limits, meteredFields), knownOperationTypesRule, noNulInStringLiteralsRule, introspectionDepthRule, refusedDocumentRule];
}
