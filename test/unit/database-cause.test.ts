/** databaseCause (src/db/errors.ts): why a statement failed, for a log line, from either driver's errors as Drizzle wraps them. */
import { describe, expect, it } from "vitest";
import { databaseCause } from "../../src/db/errors.js";

const drizzle = (cause?: unknown) => new Error("Failed query: select * from credit_settle($1) params: 42", cause === undefined ? undefined : { cause });

describe("databaseCause", () => {
  it.each([
    ["the driver's words under Drizzle's wrapper", drizzle(new Error("Connection terminated unexpectedly")), "Connection terminated unexpectedly"],
    ["with a code its words do not carry", drizzle(Object.assign(new Error("canceling statement due to lock timeout"), { code: "55P03" })), "canceling statement due to lock timeout (55P03)"],
    ["a code its words carry once", drizzle(Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" })), "connect ECONNREFUSED 127.0.0.1:5432"],
    ["only a code", drizzle(Object.assign(new Error(""), { code: "ECONNRESET" })), "ECONNRESET"],
    ["the first line of a long message", new Error("relation \"x\" does not exist\nLINE 1: select …"), 'relation "x" does not exist'],
  ])("%s", (_label, err, cause) => {
    expect(databaseCause(err)).toBe(cause);
  });

  it("is nothing for Drizzle's wrapper alone, or for no error at all", () => {
    expect(databaseCause(drizzle())).toBeUndefined();
    expect(databaseCause(undefined)).toBeUndefined();
    expect(databaseCause("text")).toBeUndefined();
  });
});
