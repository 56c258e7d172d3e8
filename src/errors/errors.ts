/**
 * One GraphQLError subclass per error code, each with typed extensions. Resolvers, the charge
 * wrapper and the ledger throw these; formatError passes them through and masks everything else.
 */
import { GraphQLError } from "graphql";
import { ERROR_HTTP_STATUS, isErrorCode, type ErrorCode } from "./codes.js";

export abstract class CreditsError<Ext extends Record<string, unknown> = Record<string, never>> extends GraphQLError {
  abstract readonly code: ErrorCode;
  protected constructor(message: string, code: ErrorCode, extensions?: Ext) {
    super(message, {
      extensions: { code, ...(extensions ?? {}), http: { status: ERROR_HTTP_STATUS[code] } },
    });
  }
}

export class UnauthenticatedError extends CreditsError {
  readonly code = "UNAUTHENTICATED" as const;
  constructor(message = "Authentication required: send Authorization: Bearer <token>") {
    super(message, "UNAUTHENTICATED");
  }
}

export class BadUserInputError extends CreditsError<{ field?: string }> {
  readonly code = "BAD_USER_INPUT" as const;
  constructor(message: string, field?: string) {
    super(message, "BAD_USER_INPUT", field ? { field } : undefined);
  }
}

export class ForbiddenError extends CreditsError {
  readonly code = "FORBIDDEN" as const;
  constructor(message: string) {
    super(message, "FORBIDDEN");
  }
}

export class NotFoundError extends CreditsError {
  readonly code = "NOT_FOUND" as const;
  constructor(message: string) {
    super(message, "NOT_FOUND");
  }
}

export interface InsufficientCreditsExtensions extends Record<string, unknown> {
  creditType: string;
  required: number;
  available: number;
  subscriptionId: string;
}

export class InsufficientCreditsError extends CreditsError<InsufficientCreditsExtensions> {
  readonly code = "INSUFFICIENT_CREDITS" as const;
  constructor(public readonly details: InsufficientCreditsExtensions) {
    super(
      `Insufficient credits: ${details.creditType} needs ${details.required}, ${details.available} available`,
      "INSUFFICIENT_CREDITS",
      details,
    );
  }
}

/**
 * CONFLICT (409). `retryAfterSeconds`, for a conflict that ends by itself (a call with the same
 * Idempotency-Key still running), says when to send again: in extensions, and in the response's
 * Retry-After header as a 429 does (errors-plugin.ts).
 */
export class ConflictError extends CreditsError<{ retryAfterSeconds?: number }> {
  readonly code = "CONFLICT" as const;
  constructor(message: string, options: { retryAfterSeconds?: number } = {}) {
    super(message, "CONFLICT", options.retryAfterSeconds === undefined ? undefined : { retryAfterSeconds: options.retryAfterSeconds });
  }
}

export class RateLimitedError extends CreditsError<{ retryAfterSeconds: number }> {
  readonly code = "RATE_LIMITED" as const;
  constructor(message: string, retryAfterSeconds: number) {
    super(message, "RATE_LIMITED", { retryAfterSeconds });
  }
}

/** Thrown on purpose when something failed on our side; its message is masked before it reaches a client. */
export class InternalError extends CreditsError {
  readonly code = "INTERNAL_SERVER_ERROR" as const;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, "INTERNAL_SERVER_ERROR");
    if (options?.cause !== undefined) (this as { cause?: unknown }).cause = options.cause;
  }
}

/**
 * Errors a resolver raises on purpose about its caller's input. The charge wrapper keeps the charge
 * for these (the work was attempted on the caller's behalf), but for argument validation
 * (isArgumentValidationError), and refunds for everything else.
 */
export function isUserInputError(err: unknown): boolean {
  return err instanceof GraphQLError && err.extensions?.code === "BAD_USER_INPUT";
}

/**
 * Codes other libraries raise for what our closed set says another way, kept with their message:
 * type-graphql's @Authorized denial (AuthorizationError) and others' "not allowed" are UNAUTHORIZED,
 * which is FORBIDDEN here. Anything else foreign stays unexpected (masked).
 */
const FOREIGN_CODES: ReadonlyMap<string, ErrorCode> = new Map([["UNAUTHORIZED", "FORBIDDEN"]]);

/** The code of the closed set an error's `extensions.code` stands for, foreign codes mapped; undefined for any other. */
export function closedCodeOf(code: unknown): ErrorCode | undefined {
  if (isErrorCode(code)) return code;
  return typeof code === "string" ? FOREIGN_CODES.get(code) : undefined;
}

/**
 * Arguments refused by validation inside the resolver, before its own code ran: type-graphql's
 * ArgumentValidationError (class-validator), a BAD_USER_INPUT carrying the `validationErrors` it
 * found. Told by its shape, so the charge path does not depend on type-graphql. Unlike a
 * BAD_USER_INPUT the resolver raises on purpose, nothing was attempted: the charge is refunded.
 */
export function isArgumentValidationError(err: unknown): boolean {
  return isUserInputError(err) && Array.isArray((err as GraphQLError).extensions.validationErrors);
}

/**
 * The closed code of a resolver's refusal to serve its caller (FORBIDDEN, UNAUTHENTICATED, or a
 * foreign code for one, like type-graphql's UNAUTHORIZED), or undefined for any other error.
 */
export function refusalCodeOf(err: unknown): "FORBIDDEN" | "UNAUTHENTICATED" | undefined {
  if (!(err instanceof GraphQLError)) return undefined;
  const code = closedCodeOf(err.extensions?.code);
  return code === "FORBIDDEN" || code === "UNAUTHENTICATED" ? code : undefined;
}
