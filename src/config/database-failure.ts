/**
 * What `npm start` says when it cannot open its database: one line naming the variable, where it
 * points (host, port and database; never the user or the password) and why, e.g.
 * `DATABASE_URL: cannot connect to PostgreSQL at 127.0.0.1:5999/x (connection refused)`,
 * instead of a driver's stack trace.
 */
import { statfsSync } from "node:fs";

export interface DatabaseStartFailure {
  /** The variable to fix: DATABASE_URL, or PGLITE_DIR for the embedded database. */
  variable: "DATABASE_URL" | "PGLITE_DIR";
  /** PostgreSQL: `host:port/database`; PGlite: the directory. */
  target: string;
  /** Why, in a few words ("connection refused", or the server's own message). */
  cause: string;
  /** The whole line: `<variable>: …`. */
  message: string;
}

/** Network and file-system error codes, as a person reads them. */
const CAUSES: Record<string, string> = {
  ECONNREFUSED: "connection refused",
  ECONNRESET: "connection reset",
  ENOTFOUND: "host not found",
  EAI_AGAIN: "host name lookup failed",
  ETIMEDOUT: "connection timed out",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  EACCES: "permission denied",
  EPERM: "permission denied",
  ENOTDIR: "a part of the path is not a directory",
  EROFS: "read-only file system",
  ENOSPC: "no space left on the device",
};

/** SQLSTATE classes that mean the session never opened: connection exception, authorization, no such database. */
const CONNECTION_SQLSTATE = /^(08|28|3D)/;

/** The pool's and the client's own timeouts (connectionTimeoutMillis). */
const TIMEOUT_MESSAGE = /timeout exceeded when trying to connect|connection timeout/i;

/** Other driver messages of a session that never opened (closed by the server, SSL refused). */
const CONNECTION_MESSAGE = /connection terminated|does not support SSL|SSL/i;

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** `host:port/database` of a postgres:// URL, without its user or password. */
export function postgresTarget(url: string): string {
  try {
    const parsed = new URL(url);
    // postgres:///db?host=/var/run/postgresql: a socket directory in the query.
    const host = parsed.hostname || parsed.searchParams.get("host") || "localhost";
    const port = parsed.port || parsed.searchParams.get("port") || "5432";
    const database = decodeURIComponent(parsed.pathname.replace(/^\//, ""));
    return `${host}:${port}${database ? `/${database}` : ""}`;
  } catch {
    return "(a URL that cannot be read)";
  }
}

/** The text with the URL's password (and the URL itself) taken out, should a driver ever quote them. */
function withoutSecrets(text: string, url: string): string {
  let out = text.split(url).join(postgresTarget(url));
  try {
    const parsed = new URL(url);
    for (const secret of new Set([parsed.password, safeDecode(parsed.password)])) {
      if (secret) out = out.split(secret).join("[redacted]");
    }
  } catch {
    // An unreadable URL: nothing more to take out.
  }
  return out;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function causeOf(err: unknown): string {
  const code = errorCode(err);
  if (code && CAUSES[code]) return CAUSES[code];
  const message = errorMessage(err).trim();
  if (TIMEOUT_MESSAGE.test(message)) return "connection timed out";
  return message.split("\n")[0] || code || "unknown error";
}

/**
 * Below this much free space, a PGlite start that failed is put down to the full disk. PGlite reports
 * a write that found no space at start only as "PGlite failed to initialize properly" (an outside
 * audit, on a full file system): the one cause an operator can act on was missing.
 */
const NEARLY_FULL_BYTES = 16 * 1024 * 1024;

/** Free bytes (for this user) on the file system holding `directory`; undefined when it cannot be read. */
function freeBytesAt(directory: string): number | undefined {
  try {
    const stats = statfsSync(directory);
    return stats.bavail * stats.bsize;
  } catch {
    return undefined;
  }
}

/** The PGlite cause, with the full disk named when the driver's words do not say it. */
function pgliteCause(cause: string, directory: string, freeBytes: (directory: string) => number | undefined): string {
  if (cause === CAUSES.ENOSPC || directory.startsWith("memory://")) return cause;
  const free = freeBytes(directory.startsWith("file://") ? directory.slice("file://".length) : directory);
  if (free === undefined || free >= NEARLY_FULL_BYTES) return cause;
  return `${CAUSES.ENOSPC}: ${Math.floor(free / 1024)} KB free; ${cause}`;
}

/**
 * Describes why the database named by the configuration could not be opened at start (connected and
 * migrated): PostgreSQL when `databaseUrl` is set, else PGlite in `pgliteDir` (whose file system's
 * free space `freeBytes` reads).
 */
export function databaseStartFailure(
  settings: { databaseUrl?: string; pgliteDir: string },
  err: unknown,
  freeBytes: (directory: string) => number | undefined = freeBytesAt,
): DatabaseStartFailure {
  if (settings.databaseUrl === undefined) {
    const target = settings.pgliteDir;
    const cause = pgliteCause(causeOf(err), target, freeBytes);
    return {
      variable: "PGLITE_DIR",
      target,
      cause,
      message: `PGLITE_DIR: could not open the embedded database in "${target}" (${cause})`,
    };
  }
  const cause = causeOf(err);
  const url = settings.databaseUrl;
  const target = postgresTarget(url);
  const safeCause = withoutSecrets(cause, url);
  const code = errorCode(err);
  const connecting =
    (code !== undefined && (CAUSES[code] !== undefined || CONNECTION_SQLSTATE.test(code))) ||
    TIMEOUT_MESSAGE.test(errorMessage(err)) ||
    CONNECTION_MESSAGE.test(errorMessage(err));
  return {
    variable: "DATABASE_URL",
    target,
    cause: safeCause,
    message: connecting
      ? `DATABASE_URL: cannot connect to PostgreSQL at ${target} (${safeCause})`
      : `DATABASE_URL: PostgreSQL at ${target} failed at start (${safeCause})`,
  };
}
