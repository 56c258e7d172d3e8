/**
 * One process per PGlite data directory. PGlite is PostgreSQL compiled to WebAssembly, running inside
 * the process that opened it: two processes on one directory each keep their own copy of the
 * database in memory and overwrite each other's files, so both answered /health and served, and the
 * writes of one were gone after a restart (an outside audit lost a subscription that way, with a
 * clean ledger audit, since the lost rows had simply vanished). So the directory is locked by a file
 * naming the process (`graphql-credits.lock`): a second server on it is refused at start, and a lock
 * left by a process that no longer runs (killed, crashed) is taken over.
 *
 * Taking over a stale lock is a check then a replace, not atomic: two servers started within the same
 * moment on a directory with a stale lock could both take it. Locking a fresh directory is atomic
 * (an exclusive link).
 */
import { linkSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const PGLITE_LOCK_FILE = "graphql-credits.lock";

/** Directories this process has open: a second handle on one in the same process is refused too. */
const openHere = new Set<string>();

export class PgliteDirectoryInUseError extends Error {
  constructor(
    readonly directory: string,
    readonly holder: number,
  ) {
    const who = holder === process.pid ? "this process already has it open" : `the process ${holder} has it open`;
    super(
      `in use: ${who}, and PGlite serves one process at a time; stop that one, or run several instances on PostgreSQL (DATABASE_URL)` +
        (holder === process.pid ? "" : `. If no such process runs, delete ${join(directory, PGLITE_LOCK_FILE)}`),
    );
    this.name = "PgliteDirectoryInUseError";
  }
}

/** Locks `directory` (which exists) for this process; returns the unlock. Throws PgliteDirectoryInUseError. */
export function lockPgliteDirectory(directory: string): () => void {
  const lockPath = join(directory, PGLITE_LOCK_FILE);
  if (openHere.has(lockPath)) throw new PgliteDirectoryInUseError(directory, process.pid);
  if (!createLock(lockPath)) {
    const holder = lockHolder(lockPath);
    if (holder !== undefined && holder !== process.pid && processRuns(holder)) throw new PgliteDirectoryInUseError(directory, holder);
    // Left by a process that is gone (or unreadable): take it over.
    removeQuietly(lockPath);
    if (!createLock(lockPath)) throw new PgliteDirectoryInUseError(directory, lockHolder(lockPath) ?? -1);
  }
  openHere.add(lockPath);
  return () => {
    openHere.delete(lockPath);
    if (lockHolder(lockPath) === process.pid) removeQuietly(lockPath);
  };
}

/** Creates the lock file with this process's id, atomically: false when one exists already. */
function createLock(lockPath: string): boolean {
  const draft = `${lockPath}.${process.pid}.${Date.now()}`;
  writeFileSync(draft, `${process.pid}\n`);
  try {
    linkSync(draft, lockPath);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  } finally {
    removeQuietly(draft);
  }
}

function lockHolder(lockPath: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(lockPath, "utf8").trim(), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it runs, under another user.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Already gone.
  }
}
