/**
 * Creating PGLITE_DIR (src/db/pglite-directory.ts): each missing directory one at a time, so that a
 * path no directory can be made in fails at once, naming it. An outside audit: PGLITE_DIR under /proc
 * hung the start forever, since Node 20's recursive mkdir loops there (mkdir("/proc/x") = ENOENT,
 * mkdir("/proc") = EEXIST, repeat).
 */
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { databaseStartFailure } from "../../src/config/database-failure.js";
import { preparePgliteDirectory } from "../../src/db/pglite-directory.js";

const root = mkdtempSync(join(tmpdir(), "pglite-directory-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** The error preparePgliteDirectory throws for `directory`, and how long it took to throw it. */
function failureOf(directory: string): { err: unknown; ms: number } {
  const started = performance.now();
  try {
    preparePgliteDirectory(directory);
  } catch (err) {
    return { err, ms: performance.now() - started };
  }
  throw new Error(`"${directory}" was prepared`);
}

describe("preparing PGLITE_DIR", () => {
  it("creates every missing directory of a nested path, and accepts one that exists", () => {
    const dir = join(root, "a", "b", "c");
    preparePgliteDirectory(dir);
    expect(statSync(dir).isDirectory()).toBe(true);
    preparePgliteDirectory(dir);
    preparePgliteDirectory(`${join(root, "a")}/./b/../b/c/`);
    expect(statSync(dir).isDirectory()).toBe(true);
  });

  it("creates a path relative to the working directory", () => {
    const dir = relative(process.cwd(), join(root, "rel", "x", "y"));
    expect(dir.startsWith("/")).toBe(false);
    preparePgliteDirectory(dir);
    expect(statSync(join(root, "rel", "x", "y")).isDirectory()).toBe(true);
  });

  // An outside audit: PGLITE_DIR=/proc/pglite-x spun forever inside Node's recursive mkdir.
  it("fails within a second under /proc, naming the directory and why", () => {
    const dir = `/proc/graphql-credits-test-${process.pid}-${Math.random().toString(36).slice(2)}`;
    const { err, ms } = failureOf(dir);
    expect(ms).toBeLessThan(1_000);
    expect((err as Error).message).toBe(`cannot create directory "${dir}": "/proc" takes no new directories (no such file or directory)`);
    expect(databaseStartFailure({ pgliteDir: dir }, err).message).toBe(
      `PGLITE_DIR: could not open the embedded database in "${dir}" (cannot create directory "${dir}": "/proc" takes no new directories (no such file or directory))`,
    );
  });

  it("names a file in the way, in the path or at its end", () => {
    const file = join(root, "file");
    writeFileSync(file, "x");
    expect((failureOf(join(file, "x", "y")).err as Error).message).toBe(`cannot create directory "${join(file, "x", "y")}": "${file}" is not a directory`);
    expect((failureOf(file).err as Error).message).toBe(`cannot create directory "${file}": "${file}" is not a directory`);
  });
});
