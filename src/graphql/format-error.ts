/**
 * formatError: keeps the codes of our closed set (and maps the well-known foreign ones into it:
 * type-graphql's UNAUTHORIZED is FORBIDDEN), turns GraphQL's own parse and validation failures
 * into BAD_USER_INPUT, and masks everything else as INTERNAL_SERVER_ERROR, so no SQL, stack or
 * internal name reaches a client. The request id is added by the errors plugin.
 */
import { unwrapResolverError } from "@apollo/server/errors";
import { GraphQLError, type GraphQLFormattedError } from "graphql";
import { isErrorCode } from "../errors/codes.js";
import { closedCodeOf } from "../errors/errors.js";
import { tooManyTokensMessage } from "./validation/document-tokens.js";

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

/** Apollo's terse messages for requests refused before GraphQL runs, said so a client knows what to do. */
const CLEARER_MESSAGES: Record<string, string> = {
  "Operation batching disabled.":
    "Batched requests are not accepted: send one operation per request, as a JSON object rather than an array.",
  // graphql's own work budget for comparing fields (e.g. thousands of repeats of one field) ran out.
  "Validation aborted.": "The operation is too complex to validate: it repeats the same fields too often. Simplify it.",
};

/**
 * Apollo's messages that name Apollo, its options and its headers (DESIGN.md: no internal name
 * reaches a client), by how they begin, said in our words.
 */
const REWORDED_PREFIXES: [prefix: string, message: string][] = [
  ["GraphQL introspection is not allowed", "Introspection is not available on this server."],
  [
    "This operation has been blocked as a potential Cross-Site Request Forgery",
    "Refused as a possible cross-site request forgery: send the request with a Content-Type of application/json.",
  ],
];

function reworded(message: string): string | undefined {
  return REWORDED_PREFIXES.find(([prefix]) => message.startsWith(prefix))?.[1];
}

const TOO_DEEP_TO_PARSE = "The document could not be parsed: it is nested too deeply. Flatten its selections and values.";

/**
 * A parse failure whose cause is not a GraphQL syntax error is the JavaScript engine giving up
 * (a document nested thousands of levels deep overflows the parser's stack). Its message
 * ("Maximum call stack size exceeded") is internal; the client gets what to fix instead.
 */
function failedInsideParser(code: string, error: unknown): boolean {
  if (code !== "GRAPHQL_PARSE_FAILED") return false;
  for (let cause = error; cause instanceof Error; cause = (cause as GraphQLError).originalError) {
    if (!(cause instanceof GraphQLError)) return true;
  }
  return false;
}

function clientMessage(code: string, message: string, error: unknown): string {
  if (failedInsideParser(code, error)) return TOO_DEEP_TO_PARSE;
  // graphql's parse maxTokens refusal, said as creditPreview says it (document-tokens.ts).
  return tooManyTokensMessage(message) ?? CLEARER_MESSAGES[message] ?? reworded(message) ?? message;
}

/** Apollo's message for an automatic persisted query whose sha256Hash is not the hash of its query. */
const HASH_MISMATCH = "provided sha does not match query";

/**
 * Why a request is the client's fault before anything ran, or undefined: one of Apollo's own client
 * codes, or an error Apollo raised without a code but with a 4xx HTTP status (a persisted query whose
 * hash does not match its text). Such errors are answered BAD_USER_INPUT (400) and logged at info.
 */
export function clientRequestReason(error: unknown): string | undefined {
  if (!(error instanceof GraphQLError)) return undefined;
  const code = error.extensions?.code;
  if (typeof code === "string" && CLIENT_REQUEST_CODES.has(code)) return code;
  if (code !== undefined && code !== "INTERNAL_SERVER_ERROR") return undefined;
  const status = (error.extensions?.http as { status?: number } | undefined)?.status;
  if (typeof status !== "number" || status < 400 || status >= 500) return undefined;
  return error.message === HASH_MISMATCH ? "PERSISTED_QUERY_HASH_MISMATCH" : "BAD_REQUEST";
}

const HASH_MISMATCH_MESSAGE =
  "The persisted query's sha256Hash is not the SHA-256 of its query: send the query's own hash, or the query alone.";

export function formatError(formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError {
  const original = unwrapResolverError(error);
  const code = formatted.extensions?.code;

  if (original instanceof GraphQLError && isErrorCode(code) && code !== "INTERNAL_SERVER_ERROR") {
    const { stacktrace: _stack, http: _http, ...extensions } = formatted.extensions ?? {};
    return { ...formatted, extensions };
  }
  // A library's own code for one of ours (type-graphql's @Authorized denial): its message, our code.
  const closed = original instanceof GraphQLError ? closedCodeOf(code) : undefined;
  if (closed !== undefined && closed !== "INTERNAL_SERVER_ERROR") {
    const { stacktrace: _stack, http: _http, ...extensions } = formatted.extensions ?? {};
    return { ...formatted, extensions: { ...extensions, code: closed } };
  }
  if (typeof code === "string" && CLIENT_REQUEST_CODES.has(code)) {
    return {
      message: clientMessage(code, formatted.message, error),
      locations: formatted.locations,
      path: formatted.path,
      extensions: { code: "BAD_USER_INPUT", reason: code },
    };
  }
  const reason = original === error ? clientRequestReason(error) : undefined;
  if (reason !== undefined) {
    return {
      message: reason === "PERSISTED_QUERY_HASH_MISMATCH" ? HASH_MISMATCH_MESSAGE : formatted.message,
      extensions: { code: "BAD_USER_INPUT", reason },
    };
  }
  return { message: MASKED_MESSAGE, path: formatted.path, extensions: { code: "INTERNAL_SERVER_ERROR" } };
}
