/**
 * One process per PGlite data directory. PGlite is PostgreSQL compiled to WebAssembly, running inside
 * the process that opened it: two processes on one directory each keep their own copy of the
 * database in memory and overwrite each other's files, so both answered /health and served, and the
 * writes of one were gone after a restart (an outside audit lost a subscription that way, with a
 * clean ledger audit, since the lost rows had simply vanished). So the directory is locked by a file
 * naming the process (`graphql-credits.lock`): a second server on it is refused at start, and a lock
 * left by a process that no longer runs (killed, crashed) is taken over.
 *
 * A pid alone named the wrong process: a copy of the directory (a backup, `cp -a`, taken while a
 * server ran) carries the lock along, and was refused naming the server on the original; and a pid
 * reused after a reboot or in a restarted container was taken for the holder. So the lock also records
 * the holder's start time and boot id (process-identity.ts), its host, and the directory's device and
 * inode numbers, and is honoured only for this very directory and the very process that wrote it.
 *
 * Taking over a stale lock is a check then a replace, not atomic: two servers started within the same
 * moment on a directory with a stale lock could both take it. Locking a fresh directory is atomic
 * (an exclusive link).
 */
import { linkSync, readFileSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { bootId, processRuns, processStartTicks, startedAt } from "./process-identity.js";

export const PGLITE_LOCK_FILE = "graphql-credits.lock";

/**
 * What a lock file holds, as JSON. Device and inode are decimal strings: inode numbers may exceed what
 * a JS number holds exactly. A lock from before these fields (a bare pid line) has the pid only.
 */
interface LockRecord {
  pid: number;
  startTicks?: number;
  bootId?: string;
  host?: string;
  dev?: string;
  ino?: string;
}

/** The process a lock is honoured for. */
export interface LockHolder {
  pid: number;
  /** Set when that is another host's process: it cannot be checked from here. */
  host?: string;
  /** When the process now running under `pid` started, when known. */
  since?: Date;
  /** Its start time matched the lock's: it is the very process that locked the directory. */
  confirmed: boolean;
}

/** Directories this process has open: a second handle on one in the same process is refused too. */
const openHere = new Set<string>();

export class PgliteDirectoryInUseError extends Error {
  constructor(
    readonly directory: string,
    readonly holder: LockHolder,
  ) {
    super(
      `in use: ${whoHasIt(holder)}, and PGlite serves one process at a time; stop that one, or run several instances on PostgreSQL (DATABASE_URL)` +
        howToClear(join(directory, PGLITE_LOCK_FILE), holder),
    );
    this.name = "PgliteDirectoryInUseError";
  }
}

/** Locks `directory` (which exists) for this process; returns the unlock. Throws PgliteDirectoryInUseError. */
export function lockPgliteDirectory(directory: string): () => void {
  const lockPath = join(directory, PGLITE_LOCK_FILE);
  if (openHere.has(lockPath)) throw new PgliteDirectoryInUseError(directory, { pid: process.pid, confirmed: true });
  const here = thisLock(directory);
  const ours = `${JSON.stringify(here)}\n`;
  if (!createLock(lockPath, ours)) {
    const holder = liveHolder(readLock(lockPath), here);
    if (holder !== undefined) throw new PgliteDirectoryInUseError(directory, holder);
    // Left by a process that is gone, carried along by a copy, or unreadable: take it over.
    removeQuietly(lockPath);
    if (!createLock(lockPath, ours)) {
      const winner = readLock(lockPath);
      throw new PgliteDirectoryInUseError(directory, liveHolder(winner, here) ?? { pid: winner?.pid ?? -1, confirmed: false });
    }
  }
  openHere.add(lockPath);
  return () => {
    openHere.delete(lockPath);
    // Only our own lock: another process may have taken the directory over meanwhile.
    if (readQuietly(lockPath) === ours) removeQuietly(lockPath);
  };
}

function thisLock(directory: string): LockRecord {
  const { dev, ino } = statSync(directory, { bigint: true });
  return { pid: process.pid, startTicks: processStartTicks(process.pid), bootId: bootId(), host: hostname(), dev: String(dev), ino: String(ino) };
}

/** Who holds the directory by `lock`, or undefined when the lock is stale. */
function liveHolder(lock: LockRecord | undefined, here: LockRecord): LockHolder | undefined {
  if (lock === undefined) return undefined; // Unreadable: emptied by a crash mid-write.
  // Another machine's processes cannot be checked from here, nor its directory told from a copy:
  // device numbers are each machine's own, and some network filesystems make up inode numbers per
  // client. Another host name on this very kernel (the same boot id) is a container of this machine,
  // typically this server's own container started again after a crash under a new name: judged below
  // as a lock of this machine, as locks always were (refusing it would keep a crashed container's
  // successor from starting until someone deleted the lock by hand).
  const sameKernel = lock.bootId !== undefined && lock.bootId === here.bootId;
  if (lock.host !== undefined && lock.host !== here.host && !sameKernel) return { pid: lock.pid, host: lock.host, confirmed: false };
  // Another directory: the lock came along with a copy of the one the holder has open.
  if ((lock.dev !== undefined && lock.dev !== here.dev) || (lock.ino !== undefined && lock.ino !== here.ino)) return undefined;
  // Written before the last boot: nothing from then runs now.
  if (lock.bootId !== undefined && here.bootId !== undefined && lock.bootId !== here.bootId) return undefined;
  if (!processRuns(lock.pid)) return undefined;
  const running = processStartTicks(lock.pid);
  const since = running === undefined ? undefined : startedAt(running);
  // Another start time: the pid was reused by an unrelated process.
  if (lock.startTicks !== undefined && running !== undefined) return lock.startTicks === running ? { pid: lock.pid, since, confirmed: true } : undefined;
  // No start time to compare: the pid alone, as locks always were; our own pid then means only that
  // it was reused (a container's server is pid 1 at every start).
  return lock.pid === process.pid ? undefined : { pid: lock.pid, since, confirmed: false };
}

function whoHasIt(holder: LockHolder): string {
  if (holder.host !== undefined) return `the process ${holder.pid} on the host ${holder.host} has it open (a directory on a filesystem shared with that host)`;
  if (holder.pid === process.pid) return "this process already has it open";
  const since = holder.since === undefined ? "" : ` (found running since ${holder.since.toISOString().replace(/\.\d+Z$/, "Z")})`;
  return `the process ${holder.pid} has it open${since}`;
}

function howToClear(lockPath: string, holder: LockHolder): string {
  if (holder.host !== undefined) return `. If ${holder.host} no longer runs it, or this directory is a copy, delete ${lockPath}`;
  // The very process that locked it still runs: deleting its lock would let a second one in.
  if (holder.confirmed) return "";
  return `. If no such process runs, delete ${lockPath}`;
}

/** Creates the lock file with `content`, atomically: false when one exists already. */
function createLock(lockPath: string, content: string): boolean {
  const draft = `${lockPath}.${process.pid}.${Date.now()}`;
  writeFileSync(draft, content);
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

function readLock(lockPath: string): LockRecord | undefined {
  const text = readQuietly(lockPath)?.trim() ?? "";
  if (!text.startsWith("{")) return pidOnly(Number.parseInt(text, 10)); // The format before JSON.
  let fields: Record<string, unknown>;
  try {
    fields = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const lock = pidOnly(fields.pid);
  if (lock === undefined) return undefined;
  const startTicks = Number.isSafeInteger(fields.startTicks) ? (fields.startTicks as number) : undefined;
  return { ...lock, startTicks, bootId: aString(fields.bootId), host: aString(fields.host), dev: aString(fields.dev), ino: aString(fields.ino) };
}

function aString(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

function pidOnly(pid: unknown): LockRecord | undefined {
  return Number.isSafeInteger(pid) && (pid as number) > 0 ? { pid: pid as number } : undefined;
}

function readQuietly(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Already gone.
  }
}
