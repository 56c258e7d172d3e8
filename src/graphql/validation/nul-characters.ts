/**
 * Refuses text containing NUL (U+0000) anywhere in a request, before anything runs: PostgreSQL
 * cannot store NUL in text, so such a value would otherwise fail deep inside a database call (a
 * masked 500) or, where it never reaches the database, be charged for and then fail to be stored
 * for an idempotent replay. No argument of this API has a use for it, so one check at the edge
 * answers BAD_USER_INPUT for every field, present and future.
 *
 * Two halves: a validation rule for string literals written in the document, and a plugin for the
 * request's variables (validation rules cannot see variables).
 */
import type { ApolloServerPlugin } from "@apollo/server";
import { GraphQLError, type ASTVisitor, type ValidationContext, type ValidationRule } from "graphql";
import { BadUserInputError } from "../../errors/errors.js";

const NUL = "\u0000";
const HOW_TO_FIX = "text may not contain NUL characters (\\u0000): remove them and send the request again.";

export const noNulInStringLiteralsRule: ValidationRule = (context: ValidationContext): ASTVisitor => ({
  StringValue(node) {
    if (node.value.includes(NUL)) context.reportError(new GraphQLError(`A string in the document: ${HOW_TO_FIX}`, { nodes: [node] }));
  },
});

/**
 * The path of the first string (value or object key) containing NUL, or undefined. Iterative, so a
 * deeply nested JSON value cannot overflow the stack.
 */
export function findNulCharacter(root: unknown, rootPath = "variables"): string | undefined {
  // Every request's variables pass here and almost none hold NUL: a scan that builds no paths
  // answers them; the paths are built only to name the offending value.
  if (!containsNul(root)) return undefined;
  const pending: { value: unknown; path: string }[] = [{ value: root, path: rootPath }];
  while (pending.length > 0) {
    const { value, path } = pending.pop()!;
    if (typeof value === "string") {
      if (value.includes(NUL)) return path;
    } else if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) pending.push({ value: value[i], path: `${path}[${i}]` });
    } else if (value !== null && typeof value === "object") {
      const entries = Object.entries(value);
      // Pushed in reverse so the first offending field in reading order is the one reported.
      for (let i = entries.length - 1; i >= 0; i--) {
        const [key, item] = entries[i];
        if (key.includes(NUL)) return `${path} (a key)`;
        pending.push({ value: item, path: `${path}.${key}` });
      }
    }
  }
  return undefined;
}

/** Whether any string (value or object key) in `root` contains NUL. Iterative, like findNulCharacter. */
function containsNul(root: unknown): boolean {
  const pending: unknown[] = [root];
  while (pending.length > 0) {
    const value = pending.pop();
    if (typeof value === "string") {
      if (value.includes(NUL)) return true;
    } else if (Array.isArray(value)) {
      for (const item of value) pending.push(item);
    } else if (value !== null && typeof value === "object") {
      for (const key in value) {
        if (!Object.hasOwn(value, key)) continue;
        if (key.includes(NUL)) return true;
        pending.push((value as Record<string, unknown>)[key]);
      }
    }
  }
  return false;
}

export function refuseNulVariablesPlugin<Ctx extends object>(): ApolloServerPlugin<Ctx> {
  return {
    async requestDidStart() {
      return {
        // After the document is parsed and validated, before anything executes.
        async didResolveOperation({ request }) {
          const where = findNulCharacter(request.variables ?? {});
          if (where) throw new BadUserInputError(`${where}: ${HOW_TO_FIX}`, where);
        },
      };
    },
  };
}
