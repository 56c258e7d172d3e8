/**
 * A host's context function that throws: Apollo answers with the error it threw, its message behind
 * "Context creation failed: " and, outside production, its stack, and without the closed code set of
 * DESIGN.md ("Errors"): no plugin hook formats that answer. Its one hook, contextCreationDidFail,
 * sees the error before Apollo formats it, so the error is rewritten there, in place:
 * - a GraphQLError with a code of the closed set (UNAUTHENTICATED for a bad session) is the host's
 *   answer: its code and message stay, with the code's HTTP status and a requestId, without a stack;
 * - anything else is a failure on the host's side: logged at error with its detail, and answered
 *   500 INTERNAL_SERVER_ERROR, masked, with the requestId the log line carries.
 */
import { randomUUID } from "node:crypto";
import type { ApolloServerPlugin } from "@apollo/server";
import { GraphQLError } from "graphql";
import type { Logger } from "pino";
import { ERROR_HTTP_STATUS, isErrorCode } from "../errors/codes.js";
import { MASKED_MESSAGE } from "../graphql/format-error.js";

export function contextFailurePlugin<TContext extends object>(logger: Logger): ApolloServerPlugin<TContext> {
  return {
    async contextCreationDidFail({ error }) {
      const requestId = randomUUID();
      const code = error instanceof GraphQLError ? error.extensions.code : undefined;
      if (error instanceof GraphQLError && isErrorCode(code) && code !== "INTERNAL_SERVER_ERROR") {
        const http = error.extensions.http ?? { status: ERROR_HTTP_STATUS[code] };
        rewrite(error, error.message, { ...error.extensions, http, requestId });
        return;
      }
      logger.error({ event: "credits.context_failed", err: error, requestId }, "the host's context function threw (masked as INTERNAL_SERVER_ERROR)");
      rewrite(error, MASKED_MESSAGE, { code: "INTERNAL_SERVER_ERROR", requestId });
    },
  };
}

/**
 * The error as it is to be answered, made a GraphQLError in place: Apollo answers a GraphQLError as it
 * is, where it would wrap any other error in one with its message behind a prefix and its stack (an
 * internal detail, outside production). No stack: the answer carries none.
 */
function rewrite(error: Error, message: string, extensions: Record<string, unknown>): void {
  if (!(error instanceof GraphQLError)) Object.setPrototypeOf(error, GraphQLError.prototype);
  error.message = message;
  Object.defineProperty(error, "stack", { value: undefined, writable: true, configurable: true });
  Object.defineProperty(error, "extensions", { value: extensions, writable: true, configurable: true, enumerable: true });
}
