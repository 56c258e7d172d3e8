/**
 * One process per PGlite directory (src/db/pglite-directory-lock.ts): a second handle on a directory
 * in use is refused (in this process, or while the process named by the lock runs); a lock left by a
 * process that is gone, or left unreadable, is taken over; closing gives the directory back. The whole
 * server refusing a second `npm start` is in test/e2e/server-start.test.ts; copies of a directory and
 * reused pids in test/db/pglite-lock-identity.test.ts.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { connectDatabase } from "../../src/db/connect.js";
import { lockPgliteDirectory, PGLITE_LOCK_FILE, PgliteDirectoryInUseError } from "../../src/db/pglite-directory-lock.js";

const root = mkdtempSync(join(tmpdir(), "pglite-lock-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** The pid the directory's lock names (a JSON record, or a bare pid line in locks from before). */
function lockPid(dir: string): number {
  const text = readFileSync(join(dir, PGLITE_LOCK_FILE), "utf8").trim();
  return text.startsWith("{") ? (JSON.parse(text) as { pid: number }).pid : Number(text);
}

function directory(name: string): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

describe("a PGlite directory", () => {
  it("is refused to a second database handle while the first is open (before PGlite opens it), and given back on close", async () => {
    const dir = join(root, "twice");
    const first = await connectDatabase({ pgliteDir: dir });
    try {
      const second = connectDatabase({ pgliteDir: dir });
      await expect(second).rejects.toBeInstanceOf(PgliteDirectoryInUseError);
      await expect(second).rejects.toThrow(/this process already has it open/);
      await first.db.execute(sql`select 1`);
      expect(lockPid(dir)).toBe(process.pid);
    } finally {
      await first.close();
    }
    expect(existsSync(join(dir, PGLITE_LOCK_FILE))).toBe(false);
  });

  it("is refused while the process its lock names runs, and taken over once that process is gone", async () => {
    const dir = directory("other-process");
    const other = spawn("sleep", ["60"], { stdio: "ignore" });
    try {
      writeFileSync(join(dir, PGLITE_LOCK_FILE), `${other.pid}\n`); // the format before JSON: the pid alone
      expect(() => lockPgliteDirectory(dir)).toThrow(new RegExp(`the process ${other.pid} has it open.*delete .*${PGLITE_LOCK_FILE}`));
    } finally {
      other.kill("SIGKILL");
    }
    await new Promise((resolve) => other.once("exit", resolve));
    // A lock left by a process killed without closing: taken over.
    const unlock = lockPgliteDirectory(dir);
    expect(lockPid(dir)).toBe(process.pid);
    unlock();
    expect(existsSync(join(dir, PGLITE_LOCK_FILE))).toBe(false);
  });

  it("with an unreadable lock (emptied by a crash mid-write) is taken over", () => {
    const dir = directory("empty-lock");
    writeFileSync(join(dir, PGLITE_LOCK_FILE), "");
    const unlock = lockPgliteDirectory(dir);
    expect(lockPid(dir)).toBe(process.pid);
    unlock();
  });

  it("whose lock another process took over meanwhile is not unlocked by the earlier holder", () => {
    const dir = directory("taken-over");
    const unlock = lockPgliteDirectory(dir);
    writeFileSync(join(dir, PGLITE_LOCK_FILE), "1\n"); // init: always runs, so never stale
    unlock();
    expect(lockPid(dir)).toBe(1);
    expect(() => lockPgliteDirectory(dir)).toThrow(/the process 1 has it open/);
  });
});
