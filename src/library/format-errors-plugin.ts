/**
 * The closed error-code set without a host's own formatError (DESIGN.md, "Errors"): once Apollo has
 * formatted the response's errors, each is formatted again by this server's formatError, so codes of
 * the closed set are kept (stack traces dropped), GraphQL's own request errors become BAD_USER_INPUT,
 * and everything else is masked as INTERNAL_SERVER_ERROR. Run before the errors plugin sets the status.
 *
 * A request Apollo refuses before any request hook runs (a body like {"query": 5}, a batch, a bad GET
 * parameter) never reaches willSendResponse: Apollo formats that error itself, with the host's
 * formatError (none) and its stack-trace setting (on outside production). Its one hook for them,
 * invalidRequestWasReceived, sees the error first: requestErrorsPlugin rewrites it there, in place,
 * as formatError would answer it (BAD_USER_INPUT, status 400 kept, no stack).
 */
import type { ApolloServerPlugin } from "@apollo/server";
import { GraphQLError, type GraphQLFormattedError } from "graphql";
import type { Logger } from "pino";
import { clientRequestReason, formatError } from "../graphql/format-error.js";
import { logExcerpt } from "../observability/log-excerpt.js";

/**
 * The formatted error as an error again: formatError judges it by its code, as it would the original.
 * Apollo's own client errors without a code (a persisted query whose hash is not its query's) are
 * told by their HTTP status, which formatting took out: those are judged by the error Apollo raised.
 */
function reformat(formatted: GraphQLFormattedError, raised: unknown): GraphQLFormattedError {
  if (raised instanceof GraphQLError && raised.message === formatted.message && clientRequestReason(raised) !== undefined) {
    return formatError(formatted, raised);
  }
  const error = new GraphQLError(formatted.message, { extensions: formatted.extensions });
  return formatError(formatted, error);
}

export function formatErrorsPlugin<TContext extends object>(): ApolloServerPlugin<TContext> {
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ response, errors: raised }) {
          if (response.body.kind !== "single") return;
          const result = response.body.singleResult;
          if (!result.errors || result.errors.length === 0) return;
          // The errors Apollo raised, one for each formatted error, when nothing was added since.
          const originals = raised?.length === result.errors.length ? raised : undefined;
          result.errors = result.errors.map((formatted, i) => reformat(formatted, originals?.[i]));
        },
      };
    },
  };
}

/** The error as formatError answers it, written into the error itself (Apollo formats it next, not us). */
function rewriteInPlace(error: GraphQLError): void {
  const formatted = formatError(error.toJSON(), error);
  const extensions = error.extensions as Record<string, unknown>;
  const http = extensions.http;
  for (const key of Object.keys(extensions)) delete extensions[key];
  Object.assign(extensions, formatted.extensions, http === undefined ? {} : { http });
  error.message = formatted.message;
  // Apollo adds `stacktrace` from `stack` outside production.
  Object.defineProperty(error, "stack", { value: undefined, writable: true, configurable: true });
}

export function requestErrorsPlugin<TContext extends object>(logger: Logger): ApolloServerPlugin<TContext> {
  return {
    async invalidRequestWasReceived({ error }) {
      if (!(error instanceof GraphQLError) || clientRequestReason(error) === undefined) return;
      // A client error: one line at info, without a stack (DESIGN.md, "Errors").
      logger.info({ reason: error.extensions.code, message: logExcerpt(error.message) }, "client error");
      rewriteInPlace(error);
    },
  };
}
