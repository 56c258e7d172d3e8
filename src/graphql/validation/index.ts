/**
 * Everything a request must pass before it runs, as Apollo takes it: validation rules (run with
 * GraphQL's own) and the request plugins that check what rules cannot see (variables).
 */
import type { ValidationRule } from "graphql";
import type { MeteredField } from "../../credits/metered-field.js";
import { introspectionDepthRule } from "./introspection-depth.js";
import { knownOperationTypesRule } from "./known-operation-types.js";
import { noNulInStringLiteralsRule } from "./nul-characters.js";
import { operationLimitRules, type OperationLimits } from "./operation-limits.js";

export { refuseNulVariablesPlugin } from "./nul-characters.js";
export type { OperationLimits } from "./operation-limits.js";

export function requestValidationRules(limits: OperationLimits, meteredFields: readonly MeteredField[]): ValidationRule[] {
  return [...operationLimitRules(limits, meteredFields), knownOperationTypesRule, noNulInStringLiteralsRule, introspectionDepthRule];
}
