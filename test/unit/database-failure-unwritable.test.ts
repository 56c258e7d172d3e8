/**
 * A PGlite start that failed on files this user cannot write (src/config/database-failure.ts): the
 * cause names one of them and its owner. An outside audit (reproduced twice): a copy of a data
 * directory whose top directory was writable but whose files were not (as after one `sudo npm start`)
 * stopped with PGlite's "Aborted(). Build with -sASSERTIONS for more info.", nothing about
 * permissions. The whole server started as another user: test/db/pglite-start-failures.test.ts.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { databaseStartFailure, firstUnwritableEntry, type UnwritableEntry } from "../../src/config/database-failure.js";

const root = mkdtempSync(join(tmpdir(), "unwritable-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const aborted = new Error("Aborted(). Build with -sASSERTIONS for more info.");
const roomy = () => 10 * 1024 ** 3;

/** A data directory like PGlite's: files at the top, and in base/1. */
function dataDirectory(name: string): string {
  const dir = join(root, name);
  mkdirSync(join(dir, "base", "1"), { recursive: true });
  writeFileSync(join(dir, "PG_VERSION"), "17\n");
  writeFileSync(join(dir, "postgresql.conf"), "");
  writeFileSync(join(dir, "base", "1", "1259"), "");
  return dir;
}

describe("a PGlite start failure on files this user cannot write", () => {
  it("names the file, its owner and the fix when another user owns it", () => {
    const entry: UnwritableEntry = { path: "base/1/1259", owner: 0, user: 65534, mode: 0o100600 };
    const failure = databaseStartFailure({ pgliteDir: "/data/pglite" }, aborted, { freeBytes: roomy, unwritableEntry: () => entry });
    expect(failure.cause).toBe(
      "files in it are not writable by this user (uid 65534): base/1/1259 is owned by uid 0; fix the ownership (chown -R) or start as its owner; Aborted(). Build with -sASSERTIONS for more info.",
    );
    expect(failure.message).toBe(`PGLITE_DIR: could not open the embedded database in "/data/pglite" (${failure.cause})`);
  });

  it("says the file is read-only when this user owns it", () => {
    const entry: UnwritableEntry = { path: "PG_VERSION", owner: 1000, user: 1000, mode: 0o100444 };
    const failure = databaseStartFailure({ pgliteDir: "/data/pglite" }, aborted, { freeBytes: roomy, unwritableEntry: () => entry });
    expect(failure.cause).toBe(
      "files in it are not writable by this user (uid 1000): PG_VERSION is read-only (mode 0444); make the files writable (chmod -R u+w); Aborted(). Build with -sASSERTIONS for more info.",
    );
  });

  it("keeps PGlite's words when every file is writable, and still names a full disk", () => {
    expect(databaseStartFailure({ pgliteDir: "/data/pglite" }, aborted, { freeBytes: roomy, unwritableEntry: () => undefined }).cause).toBe(aborted.message);
    const entry: UnwritableEntry = { path: "PG_VERSION", owner: 0, user: 1000, mode: 0o100644 };
    const full = databaseStartFailure({ pgliteDir: "/data/pglite" }, aborted, { freeBytes: () => 4096, unwritableEntry: () => entry });
    expect(full.cause).toBe(
      "no space left on the device: 4 KB free; files in it are not writable by this user (uid 1000): PG_VERSION is owned by uid 0; fix the ownership (chown -R) or start as its owner; Aborted(). Build with -sASSERTIONS for more info.",
    );
  });

  it("does not look when the cause is already clear, or there are no files", () => {
    let looked = 0;
    const probes = { freeBytes: roomy, unwritableEntry: () => (looked++, { path: "x", owner: 0, user: 1, mode: 0o100644 }) };
    const denied = Object.assign(new Error("EACCES: permission denied, open '/data/pglite/graphql-credits.lock'"), { code: "EACCES" });
    expect(databaseStartFailure({ pgliteDir: "/data/pglite" }, denied, probes).cause).toBe("permission denied");
    expect(databaseStartFailure({ pgliteDir: "memory://" }, aborted, probes).cause).toBe(aborted.message);
    expect(databaseStartFailure({ databaseUrl: "postgres://localhost/x", pgliteDir: "/data/pglite" }, aborted, probes).cause).toBe(aborted.message);
    expect(looked).toBe(0);
  });

  it("looks in the directory a file:// PGLITE_DIR names", () => {
    const seen: string[] = [];
    databaseStartFailure({ pgliteDir: "file:///data/pglite" }, aborted, { freeBytes: roomy, unwritableEntry: (dir) => (seen.push(dir), undefined) });
    expect(seen).toEqual(["/data/pglite"]);
  });
});

describe("finding a file this user cannot write", () => {
  it("walks the directory's files and subdirectories, and returns the first the probe refuses, relative to it", () => {
    const dir = dataDirectory("walk");
    const uid = process.getuid!();
    expect(firstUnwritableEntry(dir, () => true)).toBeUndefined();
    const found = firstUnwritableEntry(dir, (path) => !path.endsWith("1259"));
    expect(found).toEqual({ path: join("base", "1", "1259"), owner: uid, user: uid, mode: expect.any(Number) });
    expect(firstUnwritableEntry(dir, (path) => !path.endsWith(join("base", "1")))?.path).toBe(join("base", "1"));
  });

  it("stops after a bounded number of entries", () => {
    const dir = join(root, "many");
    mkdirSync(dir);
    for (let i = 0; i < 50; i++) writeFileSync(join(dir, `f${i}`), "");
    let probed = 0;
    expect(firstUnwritableEntry(dir, () => (probed++, true), 10)).toBeUndefined();
    expect(probed).toBe(10);
  });

  it("finds nothing in a directory that does not exist or is not a directory", () => {
    expect(firstUnwritableEntry(join(root, "missing"), () => false)).toBeUndefined();
    writeFileSync(join(root, "plain"), "");
    expect(firstUnwritableEntry(join(root, "plain"), () => false)).toBeUndefined();
  });
});
