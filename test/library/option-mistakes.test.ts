/**
 * createCredits refuses a mistaken option at start, naming it, instead of a TypeError, a directory
 * named after a URL, or an error on every request (DESIGN.md, convention 1: a bad estimator is a
 * startup error, never a per-request one).
 */
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createCredits, type CreditsOptions } from "../../src/library/index.js";
import { createLogger } from "../../src/observability/logger.js";
import { unmigratedPgliteHandle } from "../helpers/databases.js";

const caller = () => undefined;
const base = { database: "memory://", creditTypes: ["calls"], caller, recovery: false, logger: createLogger("silent") } as const;
/** What createCredits is given, as JavaScript hosts give it (no type checks). */
const start = (options: Record<string, unknown>) => createCredits({ ...base, ...options } as unknown as CreditsOptions<object>);

/** The directory an older version made of "mysql://…" (relative to the working directory). */
const MISTAKEN_DIR = join(process.cwd(), "mysql:");
afterAll(() => rmSync(MISTAKEN_DIR, { recursive: true, force: true }));

describe("createCredits' options", () => {
  it("wants creditTypes as an array", async () => {
    const { creditTypes: _, ...withoutTypes } = base;
    await expect(createCredits(withoutTypes as unknown as CreditsOptions<object>)).rejects.toThrow(/createCredits: `creditTypes` .*array/);
    await expect(start({ creditTypes: "calls" })).rejects.toThrow(/createCredits: `creditTypes` .*array/);
    await expect(start({ creditTypes: ["calls", 5] })).rejects.toThrow(/createCredits: creditTypes\[1\]/);
  });

  it("takes a database string only as a postgres:// URL, a PGlite directory or memory://", async () => {
    await expect(start({ database: "mysql://app:secret@db.internal/app" })).rejects.toThrow(/createCredits: `database` .*mysql:\/\//);
    await expect(start({ database: "mysql://app:secret@db.internal/app" })).rejects.not.toThrow(/secret/);
    expect(existsSync(MISTAKEN_DIR)).toBe(false);
    await expect(start({ database: "" })).rejects.toThrow(/createCredits: `database`/);
  });

  it("wants every estimator and meter to be a function (or an Estimator / Meter)", async () => {
    await expect(start({ estimators: { perItem: 5 } })).rejects.toThrow(/createCredits: estimators\.perItem .*function/);
    await expect(start({ estimators: { perItem: { name: "perItem" } } })).rejects.toThrow(/createCredits: estimators\.perItem .*estimate/);
    await expect(start({ meters: { items: "x" } })).rejects.toThrow(/createCredits: meters\.items .*function/);
    await expect(start({ meters: [() => 1] })).rejects.toThrow(/createCredits: `meters`/);
  });

  it("wants caller and the other context readers to be functions", async () => {
    await expect(start({ caller: "user" })).rejects.toThrow(/createCredits: `caller` .*function/);
    await expect(start({ subscription: "sub" })).rejects.toThrow(/createCredits: `subscription` .*function/);
  });

  it("says to run the migrations when migrate: false is given an unmigrated database", async () => {
    const handle = unmigratedPgliteHandle();
    try {
      const refused = start({ database: handle, migrate: false });
      await expect(refused).rejects.toThrow(/createCredits: .*not migrated.*migrateCredits\(handle\)/);
      await expect(refused).rejects.not.toThrow(/relation|Failed query/);
    } finally {
      await handle.close();
    }
  }, 120_000);
});
