/**
 * Why a live-balance socket was refused (DESIGN.md, "Live balance" and "Errors": 4401 for a bad
 * token, and messages say what to do). The 4401 close reason says what was wrong with the token, as
 * the HTTP answer to the same token does: an expired token is told "Token expired: sign in again",
 * not to send the authorization it already sent. Only a connection_init without a usable
 * `authorization` is told how to send one. Close reasons fit the protocol's 123 bytes. The audit
 * (REPORT.md, finding 3) found every bad token closed with "Unauthorized: send { authorization:
 * \"Bearer <JWT>\" } in connection_init".
 */
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import WebSocket from "ws";
import { mintToken } from "../../src/auth/mint.js";
import { DEVELOPMENT_JWT_SECRET } from "../../src/auth/dev-secret.js";
import { closeWhenTokenExpires } from "../../src/live/token-expiry.js";
import { createPgliteDatabase, type TestDatabase } from "../helpers/databases.js";
import { startTestServer, type TestServer } from "../helpers/test-app.js";

const MAX_CLOSE_REASON_BYTES = 123;
const key = new TextEncoder().encode(DEVELOPMENT_JWT_SECRET);
const now = () => Math.floor(Date.now() / 1000);

/** Opens a graphql-ws socket, sends connection_init with `payload`, and resolves with how it closed. */
function closeOf(httpUrl: string, payload: unknown): Promise<{ code: number; reason: string; acknowledged: boolean }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(httpUrl.replace(/^http/, "ws") + "/graphql", "graphql-transport-ws");
    let acknowledged = false;
    ws.on("open", () => ws.send(JSON.stringify({ type: "connection_init", payload })));
    ws.on("message", (data) => {
      if (JSON.parse(String(data)).type === "connection_ack") {
        acknowledged = true;
        ws.close(1000, "done");
      }
    });
    ws.on("close", (code, reason) => resolve({ code, reason: reason.toString(), acknowledged }));
  });
}

describe("4401 close reasons over graphql-ws", () => {
  let database: TestDatabase;
  let server: TestServer;

  beforeAll(async () => {
    database = await createPgliteDatabase();
    server = await startTestServer({ database });
  }, 120_000);
  afterAll(async () => {
    await server?.close();
    await database?.dispose();
  });

  /** The HTTP message for the same token: the socket's reason should say the same thing. */
  const httpMessage = async (token: string) => (await server.gql(`{ viewer { id } }`, {}, { token })).body.errors?.[0].message;

  it("an expired token: 'Token expired: sign in again', as over HTTP", async () => {
    const expired = await new SignJWT({ sub: "ws-reasons" }).setProtectedHeader({ alg: "HS256" }).setExpirationTime(now() - 60).sign(key);
    const closed = await closeOf(server.url, { authorization: `Bearer ${expired}` });
    expect(closed).toEqual({ code: 4401, reason: "Token expired: sign in again", acknowledged: false });
    expect(await httpMessage(expired)).toBe(closed.reason);
  });

  it.each([
    ["a future nbf", async () => new SignJWT({ sub: "ws-reasons" }).setProtectedHeader({ alg: "HS256" }).setNotBefore(now() + 3600).setExpirationTime(now() + 7200).sign(key), /not valid yet/],
    ["a wrong key", async () => mintToken({ sub: "ws-reasons", secret: "another-secret-of-enough-length-000000" }), /signature/],
    ["a numeric sub", async () => new SignJWT({ sub: 42 } as never).setProtectedHeader({ alg: "HS256" }).setExpirationTime(now() + 600).sign(key), /sub claim must be a string/],
    ["a blank sub", async () => mintToken({ sub: "\u200b" }), /sub claim .*blank/],
    ["a sub of 300 characters", async () => mintToken({ sub: "s".repeat(300) }), /sub claim .*255/],
    ["not a JWT", async () => "not-a-jwt", /not a JWT/],
  ])("%s: the reason names the problem, as the HTTP message does", async (_label, token, problem) => {
    const jwt = await token();
    const closed = await closeOf(server.url, { authorization: `Bearer ${jwt}` });
    expect(closed.code).toBe(4401);
    expect(closed.reason).toMatch(problem);
    expect(closed.reason).not.toMatch(/send \{ authorization/);
    expect(Buffer.byteLength(closed.reason)).toBeLessThanOrEqual(MAX_CLOSE_REASON_BYTES);
    expect(await httpMessage(jwt)).toMatch(problem);
  });

  it.each([
    ["no payload", undefined],
    ["no authorization", {}],
    ["a token without 'Bearer '", { authorization: "abc.def.ghi" }],
    ["'Bearer ' alone", { authorization: "Bearer " }],
  ])("%s: told how to send the token", async (_label, payload) => {
    const closed = await closeOf(server.url, payload);
    expect(closed.code).toBe(4401);
    expect(closed.reason).toMatch(/authorization: "Bearer <JWT>"/);
    expect(Buffer.byteLength(closed.reason)).toBeLessThanOrEqual(MAX_CLOSE_REASON_BYTES);
  });

  it("a good token is acknowledged", async () => {
    expect(await closeOf(server.url, { authorization: `Bearer ${await mintToken({ sub: "ws-reasons" })}` })).toMatchObject({ acknowledged: true });
  });
});

describe("a connection whose token expires while it is open", () => {
  it("closes with 4401 'Token expired: sign in again…', within 123 bytes", async () => {
    const token = await new SignJWT({ sub: "ws-reasons" }).setProtectedHeader({ alg: "HS256" }).setExpirationTime(now() + 60).sign(key);
    const closes: { code: number; reason: string }[] = [];
    const socket = { close: (code: number, reason: string) => void closes.push({ code, reason }), once: () => undefined };
    // The clock already past the token's exp: the socket is closed at once.
    closeWhenTokenExpires(socket, token, 4401, { now: () => Date.now() + 120_000 });
    expect(closes).toHaveLength(1);
    expect(closes[0].code).toBe(4401);
    expect(closes[0].reason).toMatch(/^Token expired: sign in again/);
    expect(Buffer.byteLength(closes[0].reason)).toBeLessThanOrEqual(MAX_CLOSE_REASON_BYTES);
  });

  it("waits the clock tolerance past exp: a token accepted within it is not closed the moment it opens", () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
    try {
      const exp = Math.floor(Date.now() / 1000) - 10;
      const closes: number[] = [];
      const socket = { close: (code: number) => void closes.push(code), once: () => undefined };
      // Expired 10 s ago, as JWT_CLOCK_TOLERANCE's default 30 s accepts.
      closeWhenTokenExpires(socket, fakeTokenExpiringAt(exp), 4401, { toleranceMs: 30_000 });
      expect(closes).toEqual([]);
      vi.advanceTimersByTime(exp * 1000 + 30_000 - Date.now() - 1);
      expect(closes).toEqual([]);
      vi.advanceTimersByTime(1);
      expect(closes).toEqual([4401]);
      // Without a tolerance, at once.
      closeWhenTokenExpires(socket, fakeTokenExpiringAt(exp), 4401);
      expect(closes).toEqual([4401, 4401]);
    } finally {
      vi.useRealTimers();
    }
  });
});

/** An unsigned token with only `exp`: closeWhenTokenExpires reads a token already verified. */
function fakeTokenExpiringAt(exp: number): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
  return `${part({ alg: "HS256" })}.${part({ sub: "ws-reasons", exp })}.signature`;
}
