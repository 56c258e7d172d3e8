import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { SignJWT, exportJWK, generateKeyPair } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTokenVerifier, bearerToken } from "../../src/auth/verifier.js";
import { mintToken } from "../../src/auth/mint.js";
import { DEVELOPMENT_JWT_SECRET } from "../../src/auth/dev-secret.js";
import { InternalError, UnauthenticatedError } from "../../src/errors/errors.js";
import { closedPort } from "../helpers/closed-port.js";

const SECRET = "unit-test-secret-of-enough-length-123456";
const key = (s: string) => new TextEncoder().encode(s);

async function rejection(promise: Promise<unknown>): Promise<UnauthenticatedError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(UnauthenticatedError);
    expect((err as UnauthenticatedError).extensions.code).toBe("UNAUTHENTICATED");
    return err as UnauthenticatedError;
  }
  throw new Error("expected the token to be refused");
}

describe("HS256 tokens", () => {
  const verify = createTokenVerifier({ secret: SECRET, cacheSize: 0 });

  it("accepts a valid token and reads sub", async () => {
    const token = await mintToken({ sub: "user-1", secret: SECRET });
    expect(await verify(token)).toEqual({ id: "user-1", isAdmin: false });
  });

  it("recognises admins by role service_role or app_metadata.role admin", async () => {
    expect(await verify(await mintToken({ sub: "a", secret: SECRET, admin: true }))).toEqual({ id: "a", isAdmin: true });
    expect(await verify(await mintToken({ sub: "s", secret: SECRET, extraClaims: { role: "service_role" } }))).toEqual({
      id: "s",
      isAdmin: true,
    });
    expect(await verify(await mintToken({ sub: "u", secret: SECRET, extraClaims: { role: "authenticated", app_metadata: { role: "user" } } }))).toEqual({
      id: "u",
      isAdmin: false,
    });
  });

  it("refuses an expired token", async () => {
    const token = await new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject("u").setExpirationTime(Math.floor(Date.now() / 1000) - 60).sign(key(SECRET));
    expect((await rejection(verify(token))).message).toMatch(/expired/i);
  });

  it("refuses a token signed with another key", async () => {
    const token = await mintToken({ sub: "u", secret: "another-secret-of-enough-length-000000" });
    expect((await rejection(verify(token))).message).toMatch(/signature/i);
  });

  it("refuses alg none", async () => {
    const header = Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url");
    const payload = Buffer.from(JSON.stringify({ sub: "admin", exp: Math.floor(Date.now() / 1000) + 600, role: "service_role" })).toString("base64url");
    await rejection(verify(`${header}.${payload}.`));
  });

  it("refuses a tampered payload", async () => {
    const token = await mintToken({ sub: "u", secret: SECRET });
    const [h, , s] = token.split(".");
    const forged = Buffer.from(JSON.stringify({ sub: "u", exp: Math.floor(Date.now() / 1000) + 600, role: "service_role" })).toString("base64url");
    await rejection(verify(`${h}.${forged}.${s}`));
  });

  it("refuses a missing sub", async () => {
    const noSub = await new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setExpirationTime("1h").sign(key(SECRET));
    expect((await rejection(verify(noSub))).message).toMatch(/sub/);
    // Only Supabase's service key may leave it out: another role without a sub is still refused.
    const userWithoutSub = await new SignJWT({ role: "authenticated" }).setProtectedHeader({ alg: "HS256" }).setExpirationTime("1h").sign(key(SECRET));
    expect((await rejection(verify(userWithoutSub))).message).toBe("Invalid token: the sub claim is missing");
  });

  it("accepts Supabase's service key, which names no user, as an admin caller", async () => {
    // What Supabase signs for a project's service_role key: no sub (https://supabase.com/docs/guides/api/api-keys).
    const now = Math.floor(Date.now() / 1000);
    const serviceKey = await new SignJWT({ iss: "supabase", ref: "abcdefghijklmnop", role: "service_role", iat: now, exp: now + 3600 })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .sign(key(SECRET));
    expect(await verify(serviceKey)).toEqual({ id: "service_role", isAdmin: true });
    // Past JWT_CLOCK_TOLERANCE's default 30 s: a key expired 10 s ago is still within the leeway.
    const expired = await new SignJWT({ role: "service_role", exp: now - 60 }).setProtectedHeader({ alg: "HS256" }).sign(key(SECRET));
    expect((await rejection(verify(expired))).message).toBe("Token expired: sign in again");
  });

  it("keeps the service key's actor id for the service key: a user token with sub service_role is refused", async () => {
    // A user by that id would share the service key's ledger actor, rate limits and Idempotency-Keys.
    const user = await mintToken({ sub: "service_role", secret: SECRET });
    expect((await rejection(verify(user))).message).toBe('Invalid token: the sub claim is not a valid user id: it must not be "service_role": that id is the service key\'s');
    const admin = await mintToken({ sub: "service_role", secret: SECRET, admin: true });
    expect((await rejection(verify(admin))).message).toMatch(/must not be "service_role"/);
    // The service key itself may name its role as its subject too.
    const serviceKey = await mintToken({ sub: "service_role", secret: SECRET, extraClaims: { role: "service_role" } });
    expect(await verify(serviceKey)).toEqual({ id: "service_role", isAdmin: true });
  });

  it("accepts a token without exp (as PostgREST does), and enforces exp when it is there", async () => {
    const noExp = await new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject("u").sign(key(SECRET));
    expect(await verify(noExp)).toEqual({ id: "u", isAdmin: false });
    const past = await new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject("u").setExpirationTime(Math.floor(Date.now() / 1000) - 60).sign(key(SECRET));
    expect((await rejection(verify(past))).message).toMatch(/expired/i);
  });

  it("refuses garbage", async () => {
    await rejection(verify("not-a-jwt"));
    await rejection(verify("a.b.c"));
  });

  it("checks issuer and audience when configured", async () => {
    const strict = createTokenVerifier({ secret: SECRET, issuer: "https://issuer", audience: "credits", cacheSize: 0 });
    expect(await strict(await mintToken({ sub: "u", secret: SECRET, issuer: "https://issuer", audience: "credits" }))).toEqual({ id: "u", isAdmin: false });
    expect((await rejection(strict(await mintToken({ sub: "u", secret: SECRET, issuer: "https://other", audience: "credits" })))).message).toMatch(/iss/);
    expect((await rejection(strict(await mintToken({ sub: "u", secret: SECRET, issuer: "https://issuer", audience: "other" })))).message).toMatch(/aud/);
    await rejection(strict(await mintToken({ sub: "u", secret: SECRET })));
  });

  it("development mode verifies with the development secret only", async () => {
    const dev = createTokenVerifier({ cacheSize: 0 });
    expect(await dev(await mintToken({ sub: "d" }))).toEqual({ id: "d", isAdmin: false });
    expect(await dev(await mintToken({ sub: "d", secret: DEVELOPMENT_JWT_SECRET }))).toEqual({ id: "d", isAdmin: false });
    await rejection(dev(await mintToken({ sub: "d", secret: SECRET })));
  });

  it("caches a verified token but never past its expiry", async () => {
    // No clock leeway, so the token is refused the moment its exp passes (test/unit/jwt-clock-tolerance.test.ts covers the leeway).
    const cached = createTokenVerifier({ secret: SECRET, cacheSize: 10, clockToleranceSeconds: 0 });
    const token = await new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject("c").setExpirationTime(Math.floor(Date.now() / 1000) + 1).sign(key(SECRET));
    expect(await cached(token)).toEqual({ id: "c", isAdmin: false });
    expect(await cached(token)).toEqual({ id: "c", isAdmin: false });
    await new Promise((r) => setTimeout(r, 1100));
    await rejection(cached(token));
  });
});

describe("bearer header", () => {
  it("reads Bearer tokens and refuses other schemes", () => {
    expect(bearerToken(undefined)).toBeUndefined();
    expect(bearerToken("Bearer abc.def.ghi")).toBe("abc.def.ghi");
    expect(bearerToken("bearer abc")).toBe("abc");
    expect(() => bearerToken("Basic dXNlcjpwYXNz")).toThrow(UnauthenticatedError);
  });
});

describe("RS256 and ES256 through a JWKS URL", () => {
  let server: Server;
  let jwksUrl: string;
  const keys: Record<string, CryptoKey> = {};

  beforeAll(async () => {
    const rsa = await generateKeyPair("RS256");
    const ec = await generateKeyPair("ES256");
    const stranger = await generateKeyPair("RS256");
    keys.rsa = rsa.privateKey;
    keys.ec = ec.privateKey;
    keys.stranger = stranger.privateKey;
    const jwks = {
      keys: [
        { ...(await exportJWK(rsa.publicKey)), kid: "rsa-1", alg: "RS256", use: "sig" },
        { ...(await exportJWK(ec.publicKey)), kid: "ec-1", alg: "ES256", use: "sig" },
      ],
    };
    server = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(jwks));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const sign = (alg: "RS256" | "ES256", kid: string, privateKey: CryptoKey, claims: Record<string, unknown> = {}) =>
    new SignJWT(claims).setProtectedHeader({ alg, kid }).setSubject("jwks-user").setExpirationTime("1h").sign(privateKey);

  it("accepts RS256 and ES256 tokens signed by a published key", async () => {
    const verify = createTokenVerifier({ jwksUrl, cacheSize: 0 });
    expect(await verify(await sign("RS256", "rsa-1", keys.rsa))).toEqual({ id: "jwks-user", isAdmin: false });
    expect(await verify(await sign("ES256", "ec-1", keys.ec, { role: "service_role" }))).toEqual({ id: "jwks-user", isAdmin: true });
  });

  it("refuses a token signed by a key the JWKS does not publish", async () => {
    const verify = createTokenVerifier({ jwksUrl, cacheSize: 0 });
    await rejection(verify(await sign("RS256", "rsa-1", keys.stranger)));
    await rejection(verify(await sign("RS256", "unknown-kid", keys.stranger)));
  });

  it("refuses HS256 when only a JWKS is configured (no algorithm confusion)", async () => {
    const verify = createTokenVerifier({ jwksUrl, cacheSize: 0 });
    await rejection(verify(await mintToken({ sub: "u" })));
  });

  it("answers a key set it cannot read as the server's failure, not as a bad token", async () => {
    const failing = createServer((_req, res) => {
      res.writeHead(503, { "content-type": "text/plain" });
      res.end("down for maintenance");
    });
    await new Promise<void>((resolve) => failing.listen(0, "127.0.0.1", resolve));
    const down = `http://127.0.0.1:${(failing.address() as AddressInfo).port}/jwks.json`;
    // A port nothing listens on: the fetch itself fails.
    const closed = `http://127.0.0.1:${await closedPort()}/jwks.json`;
    try {
      for (const url of [down, closed]) {
        const verify = createTokenVerifier({ jwksUrl: url, cacheSize: 0 });
        const err = await verify(await sign("RS256", "rsa-1", keys.rsa)).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err, url).toBeInstanceOf(InternalError);
        expect((err as InternalError).extensions.code).toBe("INTERNAL_SERVER_ERROR");
        expect((err as InternalError).message).toMatch(/key set at JWT_JWKS_URL could not be read/);
      }
    } finally {
      await new Promise<void>((resolve) => failing.close(() => resolve()));
    }
  });
});

describe("subject hygiene", () => {
  it("refuses a validly signed token whose sub has control characters or is absurdly long", async () => {
    const verify = createTokenVerifier({ secret: SECRET, cacheSize: 0 });
    for (const sub of ["user\u0000x", "line\nbreak", "x".repeat(256)]) {
      const token = await mintToken({ sub, secret: SECRET });
      expect((await rejection(verify(token))).message).toMatch(/sub claim is not a valid user id/);
    }
  });
});
