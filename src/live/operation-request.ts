/**
 * A graphql-ws subscribe message checked the way Apollo Server checks an HTTP request, before anything
 * runs, so the same mistake gets the same answer over both transports (DESIGN.md, "Errors"). Left to
 * graphql-ws, a syntax error is thrown (the whole socket closes with 4500 and a stack is printed),
 * validation errors go out without a code, and a variable graphql cannot coerce reaches execution,
 * whose error has no code and is masked as INTERNAL_SERVER_ERROR.
 *
 * Each refusal is a GraphQLError with the code Apollo gives the same failure over HTTP
 * (GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED, OPERATION_RESOLUTION_FAILURE, BAD_USER_INPUT), in
 * Apollo's order (parse, validate, the request's text, the operation, its variables), so formatError
 * answers them exactly as it answers HTTP's: BAD_USER_INPUT, with Apollo's code as `reason`.
 */
import { ApolloServerErrorCode } from "@apollo/server/errors";
import {
  getVariableValues,
  GraphQLError,
  Kind,
  parse,
  type DocumentNode,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type ParseOptions,
  type ValidationRule,
} from "graphql";
import { BadUserInputError } from "../errors/errors.js";
import { withoutSchemaHints } from "../graphql/schema-hints.js";
import { findBadText } from "../graphql/validation/nul-characters.js";
import { nullVariableErrors } from "../graphql/validation/null-variables.js";
import { validateDocument as validateGraphQL } from "../graphql/validation/subscription-root-conditions.js";

/** What graphql-ws hands over from a subscribe message. */
export interface OperationPayload {
  readonly query: string;
  readonly operationName?: string | null;
  readonly variables?: Record<string, unknown> | null;
}

export interface OperationChecks {
  schema: GraphQLSchema;
  /** graphql's specified rules plus the server's own (depth, aliases, metered fields, NUL in literals). */
  rules: readonly ValidationRule[];
  /** `maxTokens`: the same lexical-token limit as HTTP's parseOptions (MAX_DOCUMENT_TOKENS). */
  parseOptions?: ParseOptions;
  /**
   * Production: "Did you mean …" hints are cut from validation messages, as Apollo's
   * hideSchemaDetailsFromClientErrors does over HTTP, so they do not spell out the schema.
   */
  hideSuggestions: boolean;
}

/** A subscribe message that passed every check: graphql-ws's execution arguments, less the context. */
export interface CheckedOperation {
  document: DocumentNode;
  operation: OperationDefinitionNode;
  operationName: string | undefined;
  /** As the client sent them: graphql coerces them again when the subscription starts. */
  variableValues: Record<string, unknown>;
}

/** Said when a query or mutation comes over the socket: it would run outside Apollo's plugins. */
export const ONLY_SUBSCRIPTIONS =
  "Only subscriptions are served over WebSocket: send queries and mutations to /graphql over HTTP (POST).";

/** Runs the checks in Apollo's order; the first that fails answers for the whole message. */
export function checkOperation(payload: OperationPayload, checks: OperationChecks): CheckedOperation | GraphQLError[] {
  const document = parseDocument(payload.query, checks.parseOptions);
  if (Array.isArray(document)) return document;
  const invalid = validateDocument(document, checks);
  if (invalid.length > 0) return invalid;
  const badText = badTextOf(payload);
  if (badText) return [badText];
  const operation = selectOperation(document, payload.operationName ?? undefined);
  if (Array.isArray(operation)) return operation;
  // A query or mutation would run without Apollo's plugins: a metered mutation would be held and
  // never settled, with no extensions.credits, request limit or Idempotency-Key. HTTP serves them.
  if (operation.operation !== "subscription") return [new BadUserInputError(ONLY_SUBSCRIPTIONS)];
  const variableValues = payload.variables ?? {};
  const coercionErrors = variableErrors(checks.schema, operation, variableValues);
  if (coercionErrors.length > 0) return coercionErrors;
  const nullErrors = nullVariableErrors(checks.schema, document, operation, variableValues);
  if (nullErrors.length > 0) return nullErrors;
  return { document, operation, operationName: payload.operationName ?? undefined, variableValues };
}

/** A GraphQLError carrying one of Apollo's codes, built as Apollo's own error classes build it. */
function withApolloCode(error: GraphQLError, code: ApolloServerErrorCode, message = error.message): GraphQLError {
  return new GraphQLError(message, {
    nodes: error.nodes,
    originalError: error.originalError ?? error,
    extensions: { ...error.extensions, code },
  });
}

/**
 * graphql's parse. A failure that is not a syntax error (the engine's stack overflowing on a document
 * nested thousands of levels deep) is wrapped as Apollo wraps it, so formatError recognises it and
 * answers "nested too deeply" rather than the engine's own message.
 */
function parseDocument(query: string, parseOptions: ParseOptions | undefined): DocumentNode | GraphQLError[] {
  try {
    return parse(query, parseOptions);
  } catch (err) {
    const error = err instanceof GraphQLError ? err : new GraphQLError(asError(err).message, { originalError: asError(err) });
    // As Apollo's SyntaxError: a syntax error has no nodes, only its source and positions, and the
    // parse error itself is kept as originalError (not its cause).
    return [new GraphQLError(error.message, {
      source: error.source,
      positions: error.positions,
      originalError: error,
      extensions: { ...error.extensions, code: ApolloServerErrorCode.GRAPHQL_PARSE_FAILED },
    })];
  }
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

function validateDocument(document: DocumentNode, checks: OperationChecks): GraphQLError[] {
  return validateGraphQL(checks.schema, document, checks.rules).map((error) =>
    withApolloCode(
      error,
      ApolloServerErrorCode.GRAPHQL_VALIDATION_FAILED,
      checks.hideSuggestions ? withoutSchemaHints(error.message) : error.message,
    ),
  );
}

/**
 * NUL or an unpaired surrogate in the variables or the operation name, refused as HTTP refuses them
 * (src/graphql/validation/nul-characters.ts, a plugin the socket does not run): PostgreSQL cannot
 * store such text, so it would otherwise fail deep in a database call as a masked error.
 */
function badTextOf(payload: OperationPayload): GraphQLError | undefined {
  const inVariables = findBadText(payload.variables ?? {});
  if (inVariables) return new BadUserInputError(`${inVariables.where}: ${inVariables.problem}`, inVariables.where);
  const inName = typeof payload.operationName === "string" ? findBadText(payload.operationName, "operationName") : undefined;
  if (inName) return new BadUserInputError(`operationName: ${inName.problem}`, "operationName");
  return undefined;
}

/**
 * The operation to run, chosen as graphql's execute chooses it and refused with its messages; Apollo
 * answers those OPERATION_RESOLUTION_FAILURE. (graphql-ws would say "Unable to identify operation",
 * without a code.)
 */
function selectOperation(document: DocumentNode, operationName: string | undefined): OperationDefinitionNode | GraphQLError[] {
  const operations = document.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
  let message: string;
  if (operationName !== undefined) {
    const named = operations.find((o) => o.name?.value === operationName);
    if (named) return named;
    message = `Unknown operation named "${operationName}".`;
  } else if (operations.length === 1) {
    return operations[0];
  } else {
    message = operations.length === 0 ? "Must provide an operation." : "Must provide operation name if query contains multiple operations.";
  }
  return [withApolloCode(new GraphQLError(message), ApolloServerErrorCode.OPERATION_RESOLUTION_FAILURE)];
}

/**
 * Variables graphql cannot coerce to the operation's declared types (missing, wrong type), with
 * graphql's messages, as BAD_USER_INPUT: what Apollo answers over HTTP. Checked here, before the
 * context is built, rather than left to graphql's subscribe, whose coercion errors carry no code.
 * (Apollo leaves one of graphql's messages uncoded, "Too many errors processing variables", and so
 * masks it; it is as much the client's input as the others, so here it is BAD_USER_INPUT too.)
 */
function variableErrors(schema: GraphQLSchema, operation: OperationDefinitionNode, variables: Record<string, unknown>): GraphQLError[] {
  const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], variables, { maxErrors: 50 });
  return (coerced.errors ?? []).map((error) => withApolloCode(error, ApolloServerErrorCode.BAD_USER_INPUT));
}
