/**
 * Errors on the way out: logs every masked error with its detail (the only place the detail goes),
 * stamps each error with the request id, and sets the HTTP status from the error code, as the
 * FastAPI original answered 402, 404 … (DESIGN.md, "Errors").
 */
import type { ApolloServerPlugin } from "@apollo/server";
import type { GraphQLError } from "graphql";
import { unwrapResolverError } from "@apollo/server/errors";
import { ERROR_HTTP_STATUS, isErrorCode } from "../../errors/codes.js";
import { CreditsError } from "../../errors/errors.js";
import { contextIsRequest, type RequestOf } from "../../credits/credits-request.js";
import { clientRequestReason } from "../format-error.js";

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
            contextValue.logger.info({ reason, message: error.message, path: error.path, operationName, errors: errors.length }, "client error");
          };
          for (const error of errors) {
            const original = unwrapResolverError(error);
            const expected = original instanceof CreditsError && original.code !== "INTERNAL_SERVER_ERROR";
            const known = isErrorCode(error.extensions?.code) && error.extensions?.code !== "INTERNAL_SERVER_ERROR";
            if (expected || known) {
              logClientError(String(error.extensions?.code ?? (original as CreditsError).code), error);
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
          if (response.body.kind !== "single") return;
          const errors = response.body.singleResult.errors;
          if (!errors || errors.length === 0) return;
          const contextValue = await requestOf(context);
          for (const error of errors) {
            (error.extensions as Record<string, unknown>).requestId = contextValue.requestId;
          }
          const codes = errors.map((e) => e.extensions?.code);
          const first = codes[0];
          if (isErrorCode(first)) response.http.status = ERROR_HTTP_STATUS[first];
          // A 429 also says when to come back in the standard header, for clients and proxies that read it.
          const retryAfter = errors[0].extensions?.retryAfterSeconds;
          if (first === "RATE_LIMITED" && typeof retryAfter === "number") {
            response.http.headers.set("retry-after", String(Math.max(1, Math.ceil(retryAfter))));
          }
        },
      };
    },
  };
}
