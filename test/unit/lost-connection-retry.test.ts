/**
 * Reads sent again when their connection was lost (src/db/lost-connection-retry.ts), and only then: an error of
 * the statement itself is the caller's answer at once.
 */
import { describe, expect, it } from "vitest";
import { lostConnection } from "../../src/db/errors.js";
import { retryOnLostConnection } from "../../src/db/lost-connection-retry.js";

/** As Drizzle wraps a driver's error: the SQLSTATE or the socket's message on its cause. */
const wrapped = (cause: Error) => Object.assign(new Error("Failed query: select 1"), { cause });
const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });

describe("lostConnection", () => {
  it("says yes for a terminated backend, a broken or refused connection, a pool that could not connect", () => {
    expect(lostConnection(wrapped(withCode("terminating connection due to administrator command", "57P01")))).toBe(true);
    expect(lostConnection(wrapped(withCode("connection failure", "08006")))).toBe(true);
    expect(lostConnection(wrapped(new Error("Connection terminated unexpectedly")))).toBe(true);
    expect(lostConnection(wrapped(new Error("Client has encountered a connection error and is not queryable")))).toBe(true);
    expect(lostConnection(withCode("connect ECONNREFUSED 127.0.0.1:5432", "ECONNREFUSED"))).toBe(true);
    expect(lostConnection(new Error("timeout exceeded when trying to connect"))).toBe(true);
  });

  it("says no for what the statement did: bad input, a constraint, a bug", () => {
    expect(lostConnection(wrapped(withCode("invalid input syntax for type uuid", "22P02")))).toBe(false);
    expect(lostConnection(wrapped(withCode("duplicate key value", "23505")))).toBe(false);
    expect(lostConnection(new TypeError("cannot read properties of undefined"))).toBe(false);
    expect(lostConnection(undefined)).toBe(false);
  });
});

describe("retryOnLostConnection", () => {
  it("sends a read again after a lost connection and answers with the next attempt's rows", async () => {
    let calls = 0;
    const rows = await retryOnLostConnection(async () => {
      calls++;
      if (calls < 3) throw wrapped(new Error("Connection terminated unexpectedly"));
      return ["row"];
    }, [0, 1, 1]);
    expect(rows).toEqual(["row"]);
    expect(calls).toBe(3);
  });

  it("does not send again a read the database refused for what it says", async () => {
    let calls = 0;
    const refused = wrapped(withCode("invalid input syntax for type uuid", "22P02"));
    await expect(
      retryOnLostConnection(async () => {
        calls++;
        throw refused;
      }, [0, 1, 1]),
    ).rejects.toBe(refused);
    expect(calls).toBe(1);
  });

  it("gives up after its last pause with the last error", async () => {
    let calls = 0;
    await expect(
      retryOnLostConnection(async () => {
        calls++;
        throw wrapped(withCode(`terminating connection (${calls})`, "57P01"));
      }, [0, 1]),
    ).rejects.toThrow("Failed query");
    expect(calls).toBe(3);
  });
});
