/**
 * Errors on the way out: logs every masked error with its detail (the only place the detail goes),
 * stamps each error with the request id, and sets the HTTP status from the error code, as the
 * FastAPI original answered 402, 404 … (DESIGN.md, "Errors").
 */
import type { ApolloServerPlugin, HTTPGraphQLHead } from "@apollo/server";
import type { GraphQLError, GraphQLFormattedError } from "graphql";
import { unwrapResolverError } from "@apollo/server/errors";
import { ERROR_HTTP_STATUS, isErrorCode } from "../../errors/codes.js";
import { closedCodeOf, CreditsError } from "../../errors/errors.js";
import { contextIsRequest, type RequestOf } from "../../credits/credits-request.js";
import { clientRequestReason } from "../format-error.js";
import { logExcerpt } from "../../observability/log-excerpt.js";

/**
 * Response heads that an operation has already answered on. Apollo gives the operations of an HTTP
 * batch (a host's allowBatchedHttpRequests) one shared head, so one operation's status would be the
 * whole batch's: a 402 beside a result that was paid for. An operation that finds the head already
 * used knows it is in a batch of several, and the batch answers 200: each operation's errors carry
 * their own codes. Every operation answers after its own status was set (here, or by Apollo for its
 * validation errors), so the last to answer leaves 200. A batch of one answers as its operation.
 */
const answeredHeads = new WeakSet<object>();

function answeredInBatch(head: object): boolean {
  if (answeredHeads.has(head)) return true;
  answeredHeads.add(head);
  return false;
}

/** Generic over the host's context: `requestOf` finds the request's logger and id (convention 10). */
export function errorsPlugin<TContext extends object>(requestOf: RequestOf = contextIsRequest): ApolloServerPlugin<TContext> {
  return {
    async requestDidStart() {
      return {
        async didEncounterErrors({ errors, contextValue: context, operationName }) {
          const contextValue = await requestOf(context);
          let clientErrors = 0;
          // The client's mistakes (a coded error: 401, 402, 403, 404, 409, 429, bad input; or a
          // request wrong before anything ran: parse, validation, persisted-query hash) are worth one
          // line at info per request however many errors it has, never a stack at error (DESIGN.md,
          // "Errors"). Before, coded errors were not logged at all: a 401 left no trace of its request id.
          const logClientError = (reason: string, error: GraphQLError) => {
            if (clientErrors++ > 0) return;
            contextValue.logger.info(
              // Who was refused (a FORBIDDEN admin action names its caller), and the message's start only.
              { reason, message: logExcerpt(error.message), path: error.path, operationName, errors: errors.length, actorId: contextValue.viewer?.id },
              "client error",
            );
          };
          for (const error of errors) {
            const original = unwrapResolverError(error);
            const expected = original instanceof CreditsError && original.code !== "INTERNAL_SERVER_ERROR";
            // A foreign code formatError maps into the closed set (type-graphql's UNAUTHORIZED is
            // FORBIDDEN) is the client's too, logged under the code the client gets.
            const code = closedCodeOf(error.extensions?.code);
            const known = code !== undefined && code !== "INTERNAL_SERVER_ERROR";
            if (expected || known) {
              logClientError(String(code ?? (original as CreditsError).code), error);
              continue;
            }
            const reason = clientRequestReason(error);
            if (reason !== undefined) {
              logClientError(reason, error);
              continue;
            }
            if (!error.originalError) continue;
            contextValue.logger.error(
              { err: original, path: error.path, operationName },
              "unexpected error (masked as INTERNAL_SERVER_ERROR)",
            );
          }
        },
        async willSendResponse({ response, contextValue: context }) {
          const inBatch = answeredInBatch(response.http);
          if (inBatch) {
            response.http.status = 200;
            response.http.headers.delete("retry-after");
          }
          if (response.body.kind !== "single") return;
          const errors = response.body.singleResult.errors;
          if (!errors || errors.length === 0) return;
          // Before any await: another operation of a batch must not answer in between (answeredHeads).
          if (!inBatch) setStatusFromErrors(response.http, errors);
          const contextValue = await requestOf(context);
          for (const error of errors) {
            (error.extensions as Record<string, unknown>).requestId = contextValue.requestId;
          }
        },
      };
    },
  };
}

/**
 * The status of the response's first error's code; a 429, and a 409 that ends by itself (a call with
 * the same Idempotency-Key still running), also say when to come back in Retry-After.
 */
function setStatusFromErrors(head: HTTPGraphQLHead, errors: readonly GraphQLFormattedError[]): void {
  const first = errors[0].extensions?.code;
  if (keepsApolloStatus(head, errors[0])) return;
  if (isErrorCode(first)) head.status = ERROR_HTTP_STATUS[first];
  // The standard header, for clients and proxies that read it, beside extensions.retryAfterSeconds.
  const retryAfter = errors[0].extensions?.retryAfterSeconds;
  if ((first === "RATE_LIMITED" || first === "CONFLICT") && typeof retryAfter === "number") {
    head.headers.set("retry-after", String(Math.max(1, Math.ceil(retryAfter))));
  }
}

/**
 * A request Apollo refused before running it, with a status of its own other than 400: 405 (with
 * `Allow: POST`) for a mutation sent as GET, 406 for a delivery format the client cannot read. The
 * GraphQL-over-HTTP spec requires the 405; its code stays BAD_USER_INPUT (with `reason`), but its
 * status is not flattened to 400.
 */
function keepsApolloStatus(head: HTTPGraphQLHead, first: GraphQLFormattedError): boolean {
  if (first.extensions?.code !== "BAD_USER_INPUT" || typeof first.extensions?.reason !== "string") return false;
  return head.status === 405 || head.status === 406;
}
