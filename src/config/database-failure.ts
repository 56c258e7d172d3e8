/**
 * What `npm start` says when it cannot open its database: one line naming the variable, where it
 * points (host, port and database; never the user or the password) and why, e.g.
 * `DATABASE_URL: cannot connect to PostgreSQL at 127.0.0.1:5999/x (connection refused)`,
 * instead of a driver's stack trace.
 */
import { accessSync, constants, lstatSync, readdirSync, statfsSync, type Dirent } from "node:fs";
import { join } from "node:path";

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

/** A file or subdirectory of the PGlite directory that this process may not write. */
export interface UnwritableEntry {
  /** Relative to the directory. */
  path: string;
  /** Its owner's uid, and its mode (st_mode). */
  owner: number;
  mode: number;
  /** This process's uid. */
  user: number;
}

/** What databaseStartFailure looks at in a PGlite directory, to name a cause PGlite's words leave out. */
export interface DirectoryProbes {
  /** Free bytes (for this user) on the file system holding the directory. */
  freeBytes(directory: string): number | undefined;
  /** A file or subdirectory in it this process may not write. */
  unwritableEntry(directory: string): UnwritableEntry | undefined;
}

/**
 * How many files and subdirectories of a PGlite directory are looked at for one this user cannot write.
 * Enough to meet one where they all belong to another user (as after one `sudo npm start`), and few
 * enough not to delay the exit on a large database; breadth first, so the top's files come first.
 */
const UNWRITABLE_WALK_LIMIT = 500;

function writableHere(path: string): boolean {
  try {
    accessSync(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The first file or subdirectory of `directory` that `canWrite` refuses, among its first `limit`
 * (symbolic links are not followed); undefined when there is none, or no uid to name (Windows).
 */
export function firstUnwritableEntry(
  directory: string,
  canWrite: (path: string) => boolean = writableHere,
  limit = UNWRITABLE_WALK_LIMIT,
): UnwritableEntry | undefined {
  const user = process.getuid?.();
  if (user === undefined) return undefined;
  const directories = [""];
  let looked = 0;
  for (let relative = directories.shift(); relative !== undefined; relative = directories.shift()) {
    let entries: Dirent[];
    try {
      entries = readdirSync(join(directory, relative), { withFileTypes: true });
    } catch {
      continue;
    }
    for (const entry of entries) {
      if (entry.isSymbolicLink()) continue;
      if (looked++ >= limit) return undefined;
      const path = join(relative, entry.name);
      if (!canWrite(join(directory, path))) {
        try {
          const stats = lstatSync(join(directory, path));
          return { path, owner: stats.uid, mode: stats.mode, user };
        } catch {
          continue;
        }
      }
      if (entry.isDirectory()) directories.push(path);
    }
  }
  return undefined;
}

/**
 * Files PGlite could not write, as a cause. PGlite reports them only as "Aborted(). Build with
 * -sASSERTIONS for more info." (an outside audit, on a copy of a data directory whose files another
 * user owned): the directory itself was writable, so nothing before PGlite had refused.
 */
function unwritableCause(entry: UnwritableEntry): string {
  const who = `files in it are not writable by this user (uid ${entry.user})`;
  if (entry.owner !== entry.user) return `${who}: ${entry.path} is owned by uid ${entry.owner}; fix the ownership (chown -R) or start as its owner`;
  const mode = (entry.mode & 0o7777).toString(8).padStart(4, "0");
  return `${who}: ${entry.path} is read-only (mode ${mode}); make the files writable (chmod -R u+w)`;
}

const SYSTEM_PROBES: DirectoryProbes = { freeBytes: freeBytesAt, unwritableEntry: (directory) => firstUnwritableEntry(directory) };

/**
 * The PGlite cause, with what PGlite's words leave out: files in the directory this user cannot write
 * (unless the error already names a file-system cause), and a full disk.
 */
function pgliteCause(err: unknown, directory: string, probes: DirectoryProbes): string {
  const cause = causeOf(err);
  if (directory.startsWith("memory://")) return cause;
  const path = directory.startsWith("file://") ? directory.slice("file://".length) : directory;
  const code = errorCode(err);
  const unwritable = code !== undefined && CAUSES[code] !== undefined ? undefined : probes.unwritableEntry(path);
  const withFiles = unwritable ? `${unwritableCause(unwritable)}; ${cause}` : cause;
  if (cause === CAUSES.ENOSPC) return withFiles;
  const free = probes.freeBytes(path);
  if (free === undefined || free >= NEARLY_FULL_BYTES) return withFiles;
  return `${CAUSES.ENOSPC}: ${Math.floor(free / 1024)} KB free; ${withFiles}`;
}

/**
 * Describes why the database named by the configuration could not be opened at start (connected and
 * migrated): PostgreSQL when `databaseUrl` is set, else PGlite in `pgliteDir` (whose free space and
 * files `probes` look at; the real ones by default).
 */
export function databaseStartFailure(
  settings: { databaseUrl?: string; pgliteDir: string },
  err: unknown,
  probes: Partial<DirectoryProbes> = {},
): DatabaseStartFailure {
  if (settings.databaseUrl === undefined) {
    const target = settings.pgliteDir;
    const cause = pgliteCause(err, target, { ...SYSTEM_PROBES, ...probes });
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
