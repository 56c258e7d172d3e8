/**
 * formatError: keeps the codes of our closed set, turns GraphQL's own parse and validation failures
 * into BAD_USER_INPUT, and masks everything else as INTERNAL_SERVER_ERROR, so no SQL, stack or
 * internal name reaches a client. The request id is added by the errors plugin.
 */
import { unwrapResolverError } from "@apollo/server/errors";
import { GraphQLError, type GraphQLFormattedError } from "graphql";
import { isErrorCode } from "../errors/codes.js";

/** Apollo's own codes for a request that is wrong before anything runs. */
const CLIENT_REQUEST_CODES = new Set([
  "GRAPHQL_PARSE_FAILED",
  "GRAPHQL_VALIDATION_FAILED",
  "BAD_REQUEST",
  "OPERATION_RESOLUTION_FAILURE",
  "PERSISTED_QUERY_NOT_FOUND",
  "PERSISTED_QUERY_NOT_SUPPORTED",
]);

export const MASKED_MESSAGE = "Internal server error: the request failed on our side. Quote the requestId when you report it.";

export function formatError(formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError {
  const original = unwrapResolverError(error);
  const code = formatted.extensions?.code;

  if (original instanceof GraphQLError && isErrorCode(code) && code !== "INTERNAL_SERVER_ERROR") {
    const { stacktrace: _stack, http: _http, ...extensions } = formatted.extensions ?? {};
    return { ...formatted, extensions };
  }
  if (typeof code === "string" && CLIENT_REQUEST_CODES.has(code)) {
    return {
      message: formatted.message,
      locations: formatted.locations,
      path: formatted.path,
      extensions: { code: "BAD_USER_INPUT", reason: code },
    };
  }
  return { message: MASKED_MESSAGE, path: formatted.path, extensions: { code: "INTERNAL_SERVER_ERROR" } };
}
