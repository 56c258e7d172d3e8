/**
 * The line `npm start` logs when it cannot open its database (src/config/database-failure.ts): the
 * variable, host and port (never the user or password) and the cause in a few words. An outside
 * audit found an unreachable DATABASE_URL killing the process with pg-pool's raw ECONNREFUSED stack.
 */
import { describe, expect, it } from "vitest";
import { databaseStartFailure, postgresTarget } from "../../src/config/database-failure.js";

const errno = (code: string, message = `connect ${code} 10.0.0.9:5432`) => Object.assign(new Error(message), { code });
const pgError = (code: string, message: string) => Object.assign(new Error(message), { code, severity: "FATAL" });
const url = "postgres://app:s3cr%23t-pw@db.internal:6543/credits?sslmode=require";

describe("database start failure", () => {
  it("names DATABASE_URL, host, port and database, never the user or password", () => {
    const failure = databaseStartFailure({ databaseUrl: url, pgliteDir: "./x" }, errno("ECONNREFUSED"));
    expect(failure).toEqual({
      variable: "DATABASE_URL",
      target: "db.internal:6543/credits",
      cause: "connection refused",
      message: "DATABASE_URL: cannot connect to PostgreSQL at db.internal:6543/credits (connection refused)",
    });
    expect(JSON.stringify(failure)).not.toMatch(/s3cr|app:/);
  });

  it.each([
    [errno("ENOTFOUND", "getaddrinfo ENOTFOUND db.internal"), "host not found"],
    [errno("ETIMEDOUT"), "connection timed out"],
    [errno("EHOSTUNREACH"), "host unreachable"],
    [new Error("timeout exceeded when trying to connect"), "connection timed out"],
    [pgError("28P01", 'password authentication failed for user "app"'), 'password authentication failed for user "app"'],
    [pgError("3D000", 'database "credits" does not exist'), 'database "credits" does not exist'],
  ])("says why: %s", (err, cause) => {
    const failure = databaseStartFailure({ databaseUrl: url, pgliteDir: "./x" }, err);
    expect(failure.cause).toBe(cause);
    expect(failure.message).toBe(`DATABASE_URL: cannot connect to PostgreSQL at db.internal:6543/credits (${cause})`);
  });

  it("says so when connected but the start failed (migrations), without a password a driver quoted", () => {
    const failure = databaseStartFailure({ databaseUrl: url, pgliteDir: "./x" }, pgError("42501", "permission denied for schema public (s3cr#t-pw)"));
    expect(failure.message).toBe("DATABASE_URL: PostgreSQL at db.internal:6543/credits failed at start (permission denied for schema public ([redacted]))");
  });

  it("defaults the port, and reads a socket directory from the query", () => {
    expect(postgresTarget("postgres://u:p@localhost/db")).toBe("localhost:5432/db");
    expect(postgresTarget("postgresql:///db?host=/var/run/postgresql")).toBe("/var/run/postgresql:5432/db");
  });

  it("names PGLITE_DIR for the embedded database", () => {
    const failure = databaseStartFailure({ pgliteDir: "/etc/passwd/x" }, errno("ENOTDIR", "ENOTDIR: not a directory, mkdir '/etc/passwd/x'"));
    expect(failure.message).toBe('PGLITE_DIR: could not open the embedded database in "/etc/passwd/x" (a part of the path is not a directory)');
  });

  // An outside audit: PGLITE_DIR on a full file system stopped the start with only PGlite's words.
  it("names a full disk when PGlite's own words do not", () => {
    const initFailed = new Error("PGlite failed to initialize properly");
    const full = databaseStartFailure({ pgliteDir: "/data/pglite" }, initFailed, { freeBytes: () => 4096, unwritableEntry: () => undefined });
    expect(full.message).toBe('PGLITE_DIR: could not open the embedded database in "/data/pglite" (no space left on the device: 4 KB free; PGlite failed to initialize properly)');
    const roomy = databaseStartFailure({ pgliteDir: "/data/pglite" }, initFailed, { freeBytes: () => 10 * 1024 ** 3, unwritableEntry: () => undefined });
    expect(roomy.cause).toBe("PGlite failed to initialize properly");
    // The free space of this file system, read for real: the test machine's disk is not full.
    expect(databaseStartFailure({ pgliteDir: "." }, initFailed, { unwritableEntry: () => undefined }).cause).toBe("PGlite failed to initialize properly");
    expect(databaseStartFailure({ pgliteDir: "memory://" }, initFailed, { freeBytes: () => 0 }).cause).toBe("PGlite failed to initialize properly");
  });
});
