/**
 * Reading database errors from either driver. Drizzle wraps driver errors (DrizzleQueryError), so the
 * SQLSTATE sits on `err.cause.code`; node-postgres and PGlite both name it `code`.
 */
export const SQLSTATE = {
  CHECK_VIOLATION: "23514",
  FOREIGN_KEY_VIOLATION: "23503",
  UNIQUE_VIOLATION: "23505",
  INVALID_TEXT_REPRESENTATION: "22P02",
  NUMERIC_OUT_OF_RANGE: "22003",
  RAISE_EXCEPTION: "P0001",
} as const;

export function sqlState(err: unknown): string | undefined {
  let current: unknown = err;
  for (let depth = 0; depth < 4 && current && typeof current === "object"; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && /^[0-9A-Z]{5}$/.test(code)) return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** The constraint a violation names, when the driver reports it. */
export function violatedConstraint(err: unknown): string | undefined {
  let current: unknown = err;
  for (let depth = 0; depth < 4 && current && typeof current === "object"; depth++) {
    const constraint = (current as { constraint?: unknown }).constraint;
    if (typeof constraint === "string") return constraint;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}
