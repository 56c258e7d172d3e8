/**
 * A key removed from the set at JWT_JWKS_URL (rotation, revocation) stops being accepted, also for
 * tokens the server had already verified and cached: once the set is fetched again (a token of a
 * new key fetches it), and at the latest when the fetched set is older than 10 minutes. The outside
 * audit found a cached token of a removed key accepted for as long as it lived (17+ minutes, the set
 * fetched again several times without its key), and a new key's tokens refused for ~30 s after a
 * switch (jose's default cooldown). The clock is jose's: only Date is faked.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { SignJWT, exportJWK, generateKeyPair, type JWK } from "jose";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { createTokenVerifier } from "../../src/auth/verifier.js";
import { InternalError, UnauthenticatedError } from "../../src/errors/errors.js";

/** What the verifier answered for a token: its viewer's id, or the error it threw. */
async function outcome(verdict: Promise<{ id: string }>): Promise<string | Error> {
  return verdict.then(
    (viewer) => viewer.id,
    (err: Error) => err,
  );
}

describe("a key removed from the key set", () => {
  let server: Server;
  let jwksUrl: string;
  /** The keys the set publishes now, and whether it answers at all. */
  let published: JWK[] = [];
  let available = true;
  let fetches = 0;
  const keys: Record<"k1" | "k2", { privateKey: CryptoKey; jwk: JWK }> = {} as never;

  beforeAll(async () => {
    for (const kid of ["k1", "k2"] as const) {
      const pair = await generateKeyPair("RS256");
      keys[kid] = { privateKey: pair.privateKey, jwk: { ...(await exportJWK(pair.publicKey)), kid, alg: "RS256", use: "sig" } };
    }
    server = createServer((_req, res) => {
      fetches++;
      if (!available) {
        res.writeHead(503);
        res.end("down");
        return;
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ keys: published }));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  beforeEach(() => {
    published = [keys.k1.jwk];
    available = true;
    fetches = 0;
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const later = (ms: number) => vi.setSystemTime(Date.now() + ms);
  const sign = (kid: "k1" | "k2", sub = "rotating-user") =>
    new SignJWT({}).setProtectedHeader({ alg: "RS256", kid }).setSubject(sub).setExpirationTime("1h").sign(keys[kid].privateKey);

  it("answers a verified token from the cache while the set is unchanged and fresh", async () => {
    const verify = createTokenVerifier({ jwksUrl });
    const token = await sign("k1");
    expect(await verify(token)).toEqual({ id: "rotating-user", isAdmin: false });
    // That first verification fetched the set while it ran: a set it had not seen before it began,
    // so the token is verified once more against it (the cache never trusts a set it did not see).
    const cached = await verify(token);
    for (let i = 0; i < 5; i++) {
      later(60_000);
      // The very verdict it cached: verifying the token again would build a new one.
      expect(await verify(token)).toBe(cached);
    }
    expect(fetches).toBe(1);
  });

  it("refuses a cached token of the removed key once the set is fetched again for a new key", async () => {
    const verify = createTokenVerifier({ jwksUrl });
    const old = await sign("k1");
    expect(await outcome(verify(old))).toBe("rotating-user");

    published = [keys.k2.jwk];
    // Past any cooldown (jose's default included): a token of the new key fetches the set again.
    later(31_000);
    expect(await outcome(verify(await sign("k2")))).toBe("rotating-user");
    expect(fetches).toBe(2);

    const refused = await outcome(verify(old));
    expect(refused).toBeInstanceOf(UnauthenticatedError);
    expect((refused as UnauthenticatedError).message).toBe("Invalid token: signed by an unknown key");
    // And it stays refused.
    expect(await outcome(verify(old))).toBeInstanceOf(UnauthenticatedError);
  });

  it("refuses a cached token of the removed key at the latest once the set is 10 minutes old", async () => {
    const verify = createTokenVerifier({ jwksUrl });
    const old = await sign("k1");
    expect(await outcome(verify(old))).toBe("rotating-user");

    published = [keys.k2.jwk];
    later(9 * 60_000);
    // Nothing fetched the set again yet: within its 10 minutes the set is taken as it was.
    expect(await outcome(verify(old))).toBe("rotating-user");
    later(60_000 + 1_000);
    const refused = await outcome(verify(old));
    expect(refused).toBeInstanceOf(UnauthenticatedError);
    expect((refused as UnauthenticatedError).message).toBe("Invalid token: signed by an unknown key");
    expect(fetches).toBe(2);
  });

  it("keeps accepting a cached token whose key is still published after the set is fetched again", async () => {
    const verify = createTokenVerifier({ jwksUrl });
    const kept = await sign("k1");
    expect(await outcome(verify(kept))).toBe("rotating-user");
    published = [keys.k1.jwk, keys.k2.jwk];
    later(11 * 60_000);
    expect(await outcome(verify(kept))).toBe("rotating-user");
    expect(await outcome(verify(await sign("k2")))).toBe("rotating-user");
    expect(fetches).toBe(2);
  });

  it("accepts a new key's token within seconds of the switch, not after jose's 30 s cooldown", async () => {
    const verify = createTokenVerifier({ jwksUrl });
    expect(await outcome(verify(await sign("k1")))).toBe("rotating-user");
    published = [keys.k1.jwk, keys.k2.jwk];
    later(6_000);
    expect(await outcome(verify(await sign("k2")))).toBe("rotating-user");
  });

  it("answers a set it cannot read, when a cached verdict needs it again, as the server's failure", async () => {
    const verify = createTokenVerifier({ jwksUrl });
    const token = await sign("k1");
    expect(await outcome(verify(token))).toBe("rotating-user");
    available = false;
    later(11 * 60_000);
    const failed = await outcome(verify(token));
    expect(failed).toBeInstanceOf(InternalError);
    expect((failed as InternalError).message).toMatch(/key set at JWT_JWKS_URL could not be read/);
    available = true;
    expect(await outcome(verify(token))).toBe("rotating-user");
  });
});
