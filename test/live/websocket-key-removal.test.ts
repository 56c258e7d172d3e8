/**
 * A live-balance socket opened with a token whose key is then removed from the set at JWT_JWKS_URL
 * (rotation, revocation) is closed with 4401 once its token is checked again (every minute), with the
 * verifier's words, as at connection_init; a socket whose token is still good stays open and keeps
 * receiving its balance events, and a key set that cannot be read leaves sockets open. The outside
 * audit found such a socket open and receiving events for as long as its token lived: the token was
 * checked at connection_init only. The minute between checks is the only time faked.
 */
import { EventEmitter } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { SignJWT, exportJWK, generateKeyPair, type JWK } from "jose";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { InternalError, UnauthenticatedError } from "../../src/errors/errors.js";
import { recheckTokenWhileOpen, TOKEN_RECHECK_INTERVAL_MS } from "../../src/live/token-recheck.js";
import { createPgliteDatabase, type TestDatabase } from "../helpers/databases.js";
import { liveClient, type LiveClient } from "../helpers/live-client.js";
import { captureLogLines } from "../helpers/log-lines.js";
import { fundedSubscription, startTestServer, type TestServer } from "../helpers/test-app.js";

const BALANCE_CHANGED = `subscription ($s: ID!) { creditBalanceChanged(subscriptionId: $s, types: ["leads"]) { balance } }`;
const SEARCH_LEADS = `mutation ($s: ID!) { searchLeads(subscriptionId: $s, input: { query: "roofers", limit: 1 }) { total } }`;
const OWNER = "rotating-owner";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves with how the socket closed, or "still open" if it has not within `ms`. */
function closedWithin(client: LiveClient, ms: number): Promise<{ code: number; reason: string } | "still open"> {
  return Promise.race([client.closed, sleep(ms).then(() => "still open" as const)]);
}

describe("a live socket whose token's key is removed from the key set", () => {
  let keySet: Server;
  let published: JWK[] = [];
  const keys: Record<"k1" | "k2", { privateKey: CryptoKey; jwk: JWK }> = {} as never;
  let database: TestDatabase;
  let server: TestServer;
  let subscriptionId: string;
  const clients: LiveClient[] = [];
  const captured = captureLogLines();

  beforeAll(async () => {
    for (const kid of ["k1", "k2"] as const) {
      const pair = await generateKeyPair("RS256");
      keys[kid] = { privateKey: pair.privateKey, jwk: { ...(await exportJWK(pair.publicKey)), kid, alg: "RS256", use: "sig" } };
    }
    published = [keys.k1.jwk];
    keySet = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ keys: published }));
    });
    await new Promise<void>((resolve) => keySet.listen(0, "127.0.0.1", resolve));
    database = await createPgliteDatabase();
    server = await startTestServer({
      database,
      env: {
        JWT_JWKS_URL: `http://127.0.0.1:${(keySet.address() as AddressInfo).port}/jwks.json`,
        BALANCE_PUSH_INTERVAL: "100ms",
        LOG_LEVEL: "info",
      },
      logDestination: captured.destination,
    });
    subscriptionId = await fundedSubscription(database, OWNER, { leads: 100 });
  }, 120_000);
  afterAll(async () => {
    vi.useRealTimers();
    for (const c of clients) await c.dispose().catch(() => undefined);
    await server?.close();
    await database?.dispose();
    await new Promise<void>((resolve) => keySet.close(() => resolve()));
  });

  const sign = (kid: "k1" | "k2") =>
    new SignJWT({}).setProtectedHeader({ alg: "RS256", kid }).setSubject(OWNER).setExpirationTime("1h").sign(keys[kid].privateKey);

  /** A socket following the owner's leads, acknowledged and subscribed. */
  async function follow(token: string) {
    const client = liveClient(server.url, token);
    clients.push(client);
    const sub = client.subscribe(BALANCE_CHANGED, { s: subscriptionId });
    await sleep(300);
    return { client, sub };
  }

  /** A debit of the owner's leads over HTTP: the balance its followers should be told. */
  async function debit(token: string): Promise<number> {
    const res = await server.gql(SEARCH_LEADS, { s: subscriptionId }, { token });
    expect(res.body.errors).toBeUndefined();
    return res.body.extensions!.credits.remaining[subscriptionId].leads;
  }

  it("closes the old key's socket with 4401 at its next check; the new key's socket stays open", { timeout: 60_000 }, async () => {
    // Only timers are faked (jose's clock stays real), advancing with real time too.
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"], shouldAdvanceTime: true });
    const oldToken = await sign("k1");
    const old = await follow(oldToken);
    const before = await debit(oldToken);
    await old.sub.waitFor((r) => r.data?.creditBalanceChanged.balance === before);

    // The issuer switches to k2 and removes k1. Past the key set's cooldown, a k2 token makes the
    // server fetch the set again (a new key is accepted within seconds).
    published = [keys.k2.jwk];
    await sleep(5_500);
    const newToken = await sign("k2");
    const renewed = await follow(newToken);
    expect(await closedWithin(renewed.client, 0)).toBe("still open");

    // The next check of each socket, a minute later.
    await vi.advanceTimersByTimeAsync(TOKEN_RECHECK_INTERVAL_MS + 1_000);
    expect(await closedWithin(old.client, 5_000)).toEqual({ code: 4401, reason: "Invalid token: signed by an unknown key" });
    expect(captured.lines.filter((l) => l.event === "live.token_refused")).toMatchObject([{ level: 30, reason: "Invalid token: signed by an unknown key" }]);

    // The old token is refused over HTTP too; the new key's socket is open and told of the next debit.
    expect((await server.gql(SEARCH_LEADS, { s: subscriptionId }, { token: oldToken })).status).toBe(401);
    const after = await debit(newToken);
    await renewed.sub.waitFor((r) => r.data?.creditBalanceChanged.balance === after);
    expect(await closedWithin(renewed.client, 0)).toBe("still open");
    expect(old.sub.received.some((r) => r.data?.creditBalanceChanged.balance === after)).toBe(false);
  });
});

/** A socket as recheckTokenWhileOpen watches it: its state, its close. */
class FakeSocket extends EventEmitter {
  readonly OPEN = 1;
  readyState = 1;
  shut(): void {
    this.readyState = 3;
    this.emit("close");
  }
}

describe("recheckTokenWhileOpen", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  function watch(verify: () => Promise<unknown>) {
    const socket = new FakeSocket();
    const refused: UnauthenticatedError[] = [];
    const unchecked: unknown[] = [];
    const calls = vi.fn(verify);
    recheckTokenWhileOpen(socket, { verify: calls, refused: (err) => refused.push(err), unchecked: (err) => unchecked.push(err) });
    return { socket, refused, unchecked, calls };
  }

  it("verifies the token every minute while it is good", async () => {
    vi.useFakeTimers();
    const { calls, refused, unchecked } = watch(async () => ({ id: OWNER, isAdmin: false }));
    expect(calls).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(3 * TOKEN_RECHECK_INTERVAL_MS);
    expect(calls).toHaveBeenCalledTimes(3);
    expect(refused).toEqual([]);
    expect(unchecked).toEqual([]);
  });

  it("tells a refused token once and checks no more", async () => {
    vi.useFakeTimers();
    const refusal = new UnauthenticatedError("Invalid token: signed by an unknown key");
    const { calls, refused } = watch(async () => {
      throw refusal;
    });
    await vi.advanceTimersByTimeAsync(3 * TOKEN_RECHECK_INTERVAL_MS);
    expect(calls).toHaveBeenCalledTimes(1);
    expect(refused).toEqual([refusal]);
  });

  it("leaves the socket to the next check when the key set cannot be read", async () => {
    vi.useFakeTimers();
    const failure = new InternalError("The token could not be checked: the key set at JWT_JWKS_URL could not be read");
    const { calls, refused, unchecked } = watch(async () => {
      throw failure;
    });
    await vi.advanceTimersByTimeAsync(2 * TOKEN_RECHECK_INTERVAL_MS);
    expect(calls).toHaveBeenCalledTimes(2);
    expect(unchecked).toEqual([failure, failure]);
    expect(refused).toEqual([]);
  });

  it("stops when the socket closes, also while a check is running", async () => {
    vi.useFakeTimers();
    let answer!: () => void;
    const { socket, calls, refused } = watch(
      () =>
        new Promise((_resolve, reject) => {
          answer = () => reject(new UnauthenticatedError("Token expired: sign in again"));
        }),
    );
    await vi.advanceTimersByTimeAsync(TOKEN_RECHECK_INTERVAL_MS);
    expect(calls).toHaveBeenCalledTimes(1);
    socket.shut();
    answer();
    await vi.advanceTimersByTimeAsync(3 * TOKEN_RECHECK_INTERVAL_MS);
    expect(calls).toHaveBeenCalledTimes(1);
    expect(refused).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
  });
});
