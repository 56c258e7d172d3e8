/**
 * An operation's errors on their way to a WebSocket client, formatted and logged as HTTP's are
 * (formatError, and the errors plugin: src/graphql/plugins/errors-plugin.ts), which graphql-ws does
 * not run: codes of the closed set are kept, Apollo's request-failure codes are answered
 * BAD_USER_INPUT, anything else is masked as INTERNAL_SERVER_ERROR, and every error carries the
 * operation's requestId, the one a client quotes and the logs are searched by (DESIGN.md, "Errors").
 */
import { unwrapResolverError } from "@apollo/server/errors";
import type { GraphQLError, GraphQLFormattedError } from "graphql";
import type { Logger } from "pino";
import { clientRequestReason } from "../graphql/format-error.js";
import { logExcerpt } from "../observability/log-excerpt.js";

export interface OperationErrorContext {
  requestId: string;
  /** Lines are written with the requestId bound. */
  logger: Logger;
  formatError: (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError;
  operationName?: string;
}

export function formatOperationErrors(errors: readonly GraphQLError[], context: OperationErrorContext): GraphQLFormattedError[] {
  const log = context.logger.child({ requestId: context.requestId });
  let clientErrorLogged = false;
  return errors.map((error) => {
    const formatted = context.formatError(error.toJSON(), error);
    if (isMasked(formatted)) {
      logUnexpected(log, error, context.operationName);
    } else if (!clientErrorLogged && clientRequestReason(error) !== undefined) {
      logClientError(log, error, errors.length, context.operationName);
      clientErrorLogged = true;
    }
    return { ...formatted, extensions: { ...formatted.extensions, requestId: context.requestId } };
  });
}

function isMasked(formatted: GraphQLFormattedError): boolean {
  return formatted.extensions?.code === "INTERNAL_SERVER_ERROR";
}

/**
 * A masked error's detail goes to the log at error, the only place it goes. (Unlike the HTTP plugin,
 * this also logs masked errors graphql raised itself, without an originalError: they are masked all
 * the same, and a requestId that leads to no log line is no use.)
 */
function logUnexpected(log: Logger, error: GraphQLError, operationName: string | undefined): void {
  log.error({ err: unwrapResolverError(error), path: error.path, operationName }, "unexpected error (masked as INTERNAL_SERVER_ERROR)");
}

/**
 * A request that was wrong before it ran (parse, validation, operation name) is the client's mistake:
 * one line at info without a stack, however many errors it has. Intended answers (FORBIDDEN,
 * NOT_FOUND, BAD_USER_INPUT …) are not logged here, as over HTTP.
 */
function logClientError(log: Logger, error: GraphQLError, errors: number, operationName: string | undefined): void {
  log.info({ reason: clientRequestReason(error), message: logExcerpt(error.message), operationName, errors }, "client error");
}
