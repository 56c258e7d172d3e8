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

/** SQLSTATEs of a connection that failed rather than a statement: its class 08, a terminated or shut-down backend, too many connections. */
const CONNECTION_STATES = new Set(["57P01", "57P02", "57P03", "53300"]);
/** What node-postgres says, without a SQLSTATE, when its socket closed or could not be opened. */
const CONNECTION_CODES = new Set(["ECONNRESET", "ECONNREFUSED", "EPIPE", "ETIMEDOUT", "ENOTCONN"]);
const CONNECTION_MESSAGE = /connection terminated|not queryable|timeout exceeded when trying to connect|connection ended|terminating connection/i;

/**
 * Whether the connection failed (a killed backend, a restarting database, a refused or timed-out
 * connect), as opposed to the statement: a read that failed so can be sent again as it is.
 */
export function lostConnection(err: unknown): boolean {
  const state = sqlState(err);
  if (state !== undefined) return state.startsWith("08") || CONNECTION_STATES.has(state);
  let current: unknown = err;
  for (let depth = 0; depth < 4 && current && typeof current === "object"; depth++) {
    const { code, message } = current as { code?: unknown; message?: unknown };
    if (typeof code === "string" && CONNECTION_CODES.has(code)) return true;
    if (typeof message === "string" && CONNECTION_MESSAGE.test(message)) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * Why a database statement failed, in one line for a log: the innermost cause's own words
 * (node-postgres's or PGlite's: "Connection terminated unexpectedly", "canceling statement due to
 * lock timeout"), with its code when the words do not carry it ("ECONNREFUSED"). Drizzle's wrapper
 * ("Failed query: … params: …") names the statement, not the reason: an outside audit found alert
 * store failures logged as `{"type":"Error"}` alone during a database outage.
 */
export function databaseCause(err: unknown): string | undefined {
  let innermost: { message?: unknown; code?: unknown } | undefined;
  let current: unknown = err;
  for (let depth = 0; depth < 5 && current && typeof current === "object"; depth++) {
    innermost = current as { message?: unknown; code?: unknown };
    current = (current as { cause?: unknown }).cause;
  }
  if (!innermost) return undefined;
  const message = typeof innermost.message === "string" ? innermost.message.split("\n")[0].trim() : "";
  const code = typeof innermost.code === "string" ? innermost.code : "";
  const words = message.startsWith("Failed query") ? "" : message;
  const cause = words && code && !words.includes(code) ? `${words} (${code})` : words || code;
  return cause ? cause.slice(0, 300) : undefined;
}
