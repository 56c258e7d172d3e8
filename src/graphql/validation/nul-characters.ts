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
import { isWellFormedText } from "../../util/text.js";

const NUL = "\u0000";
const HOW_TO_FIX = "text may not contain NUL characters (\\u0000): remove them and send the request again.";
const ILL_FORMED =
  "text must be well-formed Unicode: it holds an unpaired UTF-16 surrogate (e.g. \\ud800 alone), which cannot be stored. Send the whole character.";

/**
 * The same edge also refuses ill-formed Unicode (an unpaired surrogate): it cannot be stored either
 * (node-postgres writes U+FFFD instead, silently changing the value).
 */
function textProblem(text: string): string | undefined {
  if (text.includes(NUL)) return HOW_TO_FIX;
  return isWellFormedText(text) ? undefined : ILL_FORMED;
}

export const noNulInStringLiteralsRule: ValidationRule = (context: ValidationContext): ASTVisitor => ({
  StringValue(node) {
    const problem = textProblem(node.value);
    if (problem) context.reportError(new GraphQLError(`A string in the document: ${problem}`, { nodes: [node] }));
  },
});

/** A value still to look at, with how it was reached: its parent and its key or index there. */
interface Visit {
  value: unknown;
  parent?: Visit;
  step?: string | number;
}

/** `variables.input.records[1].city`: spelled only for the value that holds a NUL. */
function pathOf(visit: Visit, rootPath: string): string {
  let path = "";
  for (let at: Visit | undefined = visit; at?.parent; at = at.parent) {
    path = (typeof at.step === "number" ? `[${at.step}]` : `.${at.step}`) + path;
  }
  return rootPath + path;
}

/** The first string (value or key) of `root` holding NUL or an unpaired surrogate: where, and what to fix. */
export function findBadText(root: unknown, rootPath = "variables"): { where: string; problem: string } | undefined {
  const found = scanForBadText(root, rootPath);
  return found && { where: found.where, problem: textProblem(found.text) ?? HOW_TO_FIX };
}

/**
 * The path of the first string (value or object key) containing NUL or an unpaired surrogate, or undefined. Iterative, so a
 * deeply nested JSON value cannot overflow the stack. Every request's variables pass here and almost
 * none hold NUL, so no path is built while searching: each value keeps a link to its parent instead.
 */
export function findNulCharacter(root: unknown, rootPath = "variables"): string | undefined {
  return scanForBadText(root, rootPath)?.where;
}

function scanForBadText(root: unknown, rootPath: string): { where: string; text: string } | undefined {
  const pending: Visit[] = [{ value: root }];
  while (pending.length > 0) {
    const visit = pending.pop()!;
    const { value } = visit;
    if (typeof value === "string") {
      if (value.includes(NUL) || !isWellFormedText(value)) return { where: pathOf(visit, rootPath), text: value };
    } else if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) pending.push({ value: value[i], parent: visit, step: i });
    } else if (value !== null && typeof value === "object") {
      const entries = Object.entries(value);
      // Pushed in reverse so the first offending field in reading order is the one reported.
      for (let i = entries.length - 1; i >= 0; i--) {
        const [key, item] = entries[i];
        if (key.includes(NUL) || !isWellFormedText(key)) return { where: `${pathOf(visit, rootPath)} (a key)`, text: key };
        pending.push({ value: item, parent: visit, step: key });
      }
    }
  }
  return undefined;
}

export function refuseNulVariablesPlugin<Ctx extends object>(): ApolloServerPlugin<Ctx> {
  return {
    async requestDidStart() {
      return {
        // After the document is parsed and validated, before anything executes.
        async didResolveOperation({ request }) {
          const found = findBadText(request.variables ?? {});
          if (found) throw new BadUserInputError(`${found.where}: ${found.problem}`, found.where);
          const nameProblem = typeof request.operationName === "string" ? textProblem(request.operationName) : undefined;
          if (nameProblem) throw new BadUserInputError(`operationName: ${nameProblem}`, "operationName");
        },
      };
    },
  };
}
