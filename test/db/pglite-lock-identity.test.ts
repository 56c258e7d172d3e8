/**
 * A PGlite directory's lock names the process that holds it and the directory it locks
 * (src/db/pglite-directory-lock.ts), so that it is honoured for that directory and that process only.
 * An outside audit: a copy of a directory in use (`cp -a` for a backup, while the server ran) could
 * not be started, refused naming the production server, which has the original open; and a stale
 * lock whose pid a later, unrelated process got was refused the same way. The lock takes its holder's
 * start time and boot id from /proc, so these cases are Linux's; without /proc the pid alone counts,
 * as in test/db/pglite-directory-lock.test.ts.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { lockPgliteDirectory, PGLITE_LOCK_FILE, PgliteDirectoryInUseError } from "../../src/db/pglite-directory-lock.js";

const root = mkdtempSync(join(tmpdir(), "pglite-lock-identity-"));

function directory(name: string): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

function readLock(dir: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(dir, PGLITE_LOCK_FILE), "utf8")) as Record<string, unknown>;
}

/** The pid the directory's lock names, in either format (a bare pid line before JSON). */
function lockPid(dir: string): number {
  const text = readFileSync(join(dir, PGLITE_LOCK_FILE), "utf8").trim();
  return text.startsWith("{") ? (JSON.parse(text) as { pid: number }).pid : Number(text);
}

/** `dir`'s identity as a lock records it. */
function directoryIdentity(dir: string): { dev: string; ino: string } {
  const { dev, ino } = statSync(dir, { bigint: true });
  return { dev: String(dev), ino: String(ino) };
}

/** Another node process that locks `dir` and keeps it until killed, as a running server does. */
async function holdInAnotherProcess(dir: string): Promise<ChildProcess> {
  const lockModule = pathToFileURL(resolve("src/db/pglite-directory-lock.ts")).href;
  const code = `const { lockPgliteDirectory } = await import(process.argv[1]); lockPgliteDirectory(process.argv[2]); console.log("locked"); setInterval(() => {}, 60_000);`;
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code, lockModule, dir], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((locked, failed) => {
    child.stdout!.on("data", (chunk: Buffer) => chunk.toString().includes("locked") && locked());
    child.once("exit", (status) => failed(new Error(`the holder exited (${status}) before locking`)));
  });
  return child;
}

describe.runIf(existsSync("/proc/self/stat"))("a PGlite directory's lock, by process and directory identity", () => {
  const held = join(root, "held");
  let holder: ChildProcess;
  beforeAll(async () => {
    holder = await holdInAnotherProcess(directory("held"));
  }, 30_000);
  afterAll(async () => {
    holder.kill("SIGKILL");
    if (holder.exitCode === null && holder.signalCode === null) await new Promise((exited) => holder.once("exit", exited));
    rmSync(root, { recursive: true, force: true });
  });

  it("is honoured for this very directory while the process that wrote it runs, naming it and since when it runs", () => {
    let refusal: unknown;
    try {
      lockPgliteDirectory(held);
    } catch (err) {
      refusal = err;
    }
    expect(refusal).toBeInstanceOf(PgliteDirectoryInUseError);
    const message = (refusal as Error).message;
    // The very process that locked it: no advice to delete its lock.
    expect(message).toMatch(
      new RegExp(`^in use: the process ${holder.pid} has it open \\(found running since (\\S+)\\), and PGlite serves one process at a time; stop that one, or run several instances on PostgreSQL \\(DATABASE_URL\\)$`),
    );
    const since = Date.parse(/running since (\S+)\)/.exec(message)![1]);
    expect(Math.abs(Date.now() - since)).toBeLessThan(120_000);
  });

  it("is taken over in a copy of the directory (cp -a while the holder runs): the lock it carries names the original", () => {
    const copy = join(root, "held-copy");
    execFileSync("cp", ["-a", held, copy]);
    expect(lockPid(copy)).toBe(holder.pid);
    const unlock = lockPgliteDirectory(copy);
    expect(readLock(copy)).toMatchObject({ pid: process.pid, ...directoryIdentity(copy) });
    unlock();
    expect(existsSync(join(copy, PGLITE_LOCK_FILE))).toBe(false);
    // The original stays its holder's.
    expect(() => lockPgliteDirectory(held)).toThrow(`the process ${holder.pid} has it open`);
  });

  it("is taken over in a copy of a directory this process has open", () => {
    const mine = directory("mine");
    const unlock = lockPgliteDirectory(mine);
    const copy = join(root, "mine-copy");
    execFileSync("cp", ["-a", mine, copy]);
    const unlockCopy = lockPgliteDirectory(copy);
    expect(readLock(copy)).toMatchObject({ pid: process.pid, ...directoryIdentity(copy) });
    unlockCopy();
    unlock();
  });

  it("naming a running process under another start time (its pid since reused) is taken over; under its own, refused", () => {
    const dir = directory("reused");
    const lock: Record<string, unknown> = { ...readLock(held), ...directoryIdentity(dir) };
    writeFileSync(join(dir, PGLITE_LOCK_FILE), JSON.stringify(lock));
    expect(() => lockPgliteDirectory(dir)).toThrow(`the process ${holder.pid} has it open`);

    writeFileSync(join(dir, PGLITE_LOCK_FILE), JSON.stringify({ ...lock, startTicks: (lock.startTicks as number) - 1 }));
    const unlock = lockPgliteDirectory(dir);
    expect(readLock(dir).pid).toBe(process.pid);
    unlock();
  });

  it("written before the last boot is taken over, though a process runs under its pid", () => {
    const dir = directory("before-boot");
    const lock = { ...readLock(held), ...directoryIdentity(dir), bootId: "00000000-0000-4000-8000-000000000000" };
    writeFileSync(join(dir, PGLITE_LOCK_FILE), JSON.stringify(lock));
    const unlock = lockPgliteDirectory(dir);
    expect(readLock(dir).pid).toBe(process.pid);
    unlock();
  });

  it("from another host is refused (a shared filesystem), naming the host and how to clear the lock", () => {
    const dir = directory("shared");
    const lockPath = join(dir, PGLITE_LOCK_FILE);
    const otherKernel = "00000000-0000-4000-8000-000000000001";
    writeFileSync(lockPath, JSON.stringify({ ...readLock(held), ...directoryIdentity(dir), host: "db-elsewhere.example", bootId: otherKernel }));
    expect(() => lockPgliteDirectory(dir)).toThrow(
      `in use: the process ${holder.pid} on the host db-elsewhere.example has it open (a directory on a filesystem shared with that host), and PGlite serves one process at a time; stop that one, or run several instances on PostgreSQL (DATABASE_URL). If db-elsewhere.example no longer runs it, or this directory is a copy, delete ${lockPath}`,
    );
    expect(readLock(dir).host).toBe("db-elsewhere.example");
  });

  it("under another host name on this very kernel (a container started again after a crash) is judged as this machine's", () => {
    // The holder still runs, with its start time: refused, as on this host.
    const running = directory("renamed-running");
    writeFileSync(join(running, PGLITE_LOCK_FILE), JSON.stringify({ ...readLock(held), ...directoryIdentity(running), host: "old-container-name" }));
    expect(() => lockPgliteDirectory(running)).toThrow(`the process ${holder.pid} has it open`);

    // The holder is gone (its start time no longer runs under that pid): taken over, not refused as another host's.
    const crashed = directory("renamed-crashed");
    const gone: Record<string, unknown> = { ...readLock(held), ...directoryIdentity(crashed), host: "old-container-name" };
    writeFileSync(join(crashed, PGLITE_LOCK_FILE), JSON.stringify({ ...gone, startTicks: (gone.startTicks as number) - 1 }));
    const unlock = lockPgliteDirectory(crashed);
    expect(readLock(crashed)).toMatchObject({ pid: process.pid });
    unlock();
  });
});
