/**
 * The closed set of error codes clients can rely on, with the HTTP status each one sets when it is
 * the response's only error (DESIGN.md, "Errors").
 */
export const ERROR_HTTP_STATUS = {
  UNAUTHENTICATED: 401,
  BAD_USER_INPUT: 400,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  INSUFFICIENT_CREDITS: 402,
  CONFLICT: 409,
  RATE_LIMITED: 429,
  INTERNAL_SERVER_ERROR: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_HTTP_STATUS;

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === "string" && Object.hasOwn(ERROR_HTTP_STATUS, code);
}
