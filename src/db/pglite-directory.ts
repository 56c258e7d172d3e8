/**
 * Creates PGLITE_DIR before PGlite opens it: the nearest directory of the path that exists, then each
 * missing one below it, one mkdir at a time. Not Node's recursive mkdir: on Node 20 it loops forever
 * where a directory exists but takes no new ones (an outside audit: PGLITE_DIR=/proc/pglite-x hung the
 * start at ~70% CPU, logging nothing, as mkdir("/proc/pglite-x") = ENOENT and mkdir("/proc") = EEXIST
 * repeated). Every refusal is a PgliteDirectoryError whose message is the cause as a person reads it
 * (which directory, and why); its `cause` is the file system's own error.
 */
import { mkdirSync, statSync, type Stats } from "node:fs";
import { dirname, resolve } from "node:path";

/** File-system error codes, as a person reads them. */
const REASONS: Record<string, string> = {
  EACCES: "permission denied",
  EPERM: "permission denied",
  EROFS: "read-only file system",
  ENOSPC: "no space left on the device",
  EDQUOT: "disk quota exceeded",
  ENOTDIR: "a part of the path is not a directory",
  ENAMETOOLONG: "the name is too long",
  ELOOP: "too many symbolic links",
};

export class PgliteDirectoryError extends Error {
  constructor(
    readonly directory: string,
    reason: string,
    cause?: unknown,
  ) {
    super(`cannot create directory "${directory}": ${reason}`, { cause });
    this.name = "PgliteDirectoryError";
  }
}

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

function reasonOf(err: unknown): string {
  const code = errorCode(err);
  return (code && REASONS[code]) || code || String(err);
}

/**
 * `path`'s stats, or undefined when nothing is there (ENOTDIR too: a file above it is then found by
 * the walk up, and named); any other error (EACCES) throws.
 */
function statOrNothing(path: string): Stats | undefined {
  try {
    return statSync(path, { throwIfNoEntry: false });
  } catch (err) {
    if (errorCode(err) === "ENOTDIR") return undefined;
    throw err;
  }
}

/**
 * Makes `directory` (relative to the working directory, or absolute) exist as a directory. Throws
 * PgliteDirectoryError naming the directory it could not create, at once.
 */
export function preparePgliteDirectory(directory: string): void {
  const target = resolve(directory);
  // From the target up to the nearest path that exists: the directories to create, deepest first.
  const missing: string[] = [];
  let existing = target;
  let stats: Stats | undefined;
  for (;;) {
    try {
      stats = statOrNothing(existing);
    } catch (err) {
      throw new PgliteDirectoryError(target, `"${existing}" cannot be read (${reasonOf(err)})`, err);
    }
    const parent = dirname(existing);
    if (stats !== undefined || parent === existing) break;
    missing.push(existing);
    existing = parent;
  }
  if (stats === undefined || !stats.isDirectory()) throw new PgliteDirectoryError(target, `"${existing}" is not a directory`);

  for (const dir of missing.reverse()) {
    try {
      mkdirSync(dir);
    } catch (err) {
      const code = errorCode(err);
      // Another process created it meanwhile: fine, when it is a directory.
      if (code === "EEXIST" && statOrNothing(dir)?.isDirectory()) continue;
      // ENOENT for a directory whose parent exists: a file system that holds no new directories (/proc).
      const reason = code === "ENOENT" ? `"${dirname(dir)}" takes no new directories (no such file or directory)` : reasonOf(err);
      throw new PgliteDirectoryError(dir, reason, err);
    }
  }
}
