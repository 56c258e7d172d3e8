/**
 * JWT_CLOCK_TOLERANCE: leeway for a token's exp, nbf and iat against this server's clock. An outside
 * audit found exp and nbf checked with no leeway at all (an identity provider's clock a second
 * ahead made fresh tokens "not valid yet") and a token issued two days in the future without exp
 * accepted, so a wrong clock at the issuer minted tokens that could never be told apart from good
 * ones.
 */
import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { createTokenVerifier } from "../../src/auth/verifier.js";
import { loadConfig } from "../../src/config/config.js";
import { UnauthenticatedError } from "../../src/errors/errors.js";
import { configProblems } from "../helpers/config-problems.js";

const SECRET = "unit-test-secret-of-enough-length-123456";
const key = new TextEncoder().encode(SECRET);
const now = () => Math.floor(Date.now() / 1000);
const TWO_DAYS = 2 * 24 * 3600;

/** A token signed with the right key whose claims are exactly `claims`. */
const signed = (claims: Record<string, unknown>) => new SignJWT({ sub: "clock-user", ...claims }).setProtectedHeader({ alg: "HS256" }).sign(key);

const verifierWith = (clockToleranceSeconds?: number) => createTokenVerifier({ secret: SECRET, cacheSize: 0, clockToleranceSeconds });
/** The verifier as the server builds it from the default configuration. */
const byDefault = verifierWith(loadConfig({}).JWT_CLOCK_TOLERANCE);
const strict = verifierWith(0);

async function refusal(verify: (token: string) => Promise<unknown>, token: string): Promise<string> {
  const err = await verify(token).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, "the token was accepted").toBeInstanceOf(UnauthenticatedError);
  expect((err as UnauthenticatedError).extensions).toMatchObject({ code: "UNAUTHENTICATED", http: { status: 401 } });
  return (err as UnauthenticatedError).message;
}

describe("JWT clock tolerance", () => {
  it("defaults to 30 seconds, for the configuration and for a verifier given none", async () => {
    expect(loadConfig({}).JWT_CLOCK_TOLERANCE).toBe(30);
    const expiredTenSecondsAgo = await signed({ exp: now() - 10 });
    expect(await verifierWith(undefined)(expiredTenSecondsAgo)).toEqual({ id: "clock-user", isAdmin: false });
  });

  it("accepts a token expired 10 s ago with the default, and refuses it with 0", async () => {
    const token = await signed({ exp: now() - 10 });
    expect(await byDefault(token)).toEqual({ id: "clock-user", isAdmin: false });
    expect(await refusal(strict, token)).toBe("Token expired: sign in again");
  });

  it("refuses a token expired 60 s ago", async () => {
    expect(await refusal(byDefault, await signed({ exp: now() - 60 }))).toBe("Token expired: sign in again");
  });

  it("accepts a token whose nbf is 10 s ahead, and refuses it with 0", async () => {
    const token = await signed({ nbf: now() + 10, exp: now() + 600 });
    expect(await byDefault(token)).toEqual({ id: "clock-user", isAdmin: false });
    expect(await refusal(strict, token)).toMatch(/^Token not valid yet/);
  });

  it("refuses a token issued 2 days in the future (no exp), 401 UNAUTHENTICATED", async () => {
    const message = await refusal(byDefault, await signed({ iat: now() + TWO_DAYS }));
    expect(message).toMatch(/^Token issued in the future/);
    // The same words close a refused WebSocket, whose close reason holds 123 bytes.
    expect(Buffer.byteLength(message)).toBeLessThanOrEqual(123);
    // With an exp too, and for Supabase's service key, which names no user.
    await refusal(byDefault, await signed({ iat: now() + TWO_DAYS, exp: now() + TWO_DAYS + 3600 }));
    const serviceKey = await new SignJWT({ role: "service_role", iat: now() + TWO_DAYS }).setProtectedHeader({ alg: "HS256" }).sign(key);
    expect(await refusal(byDefault, serviceKey)).toMatch(/^Token issued in the future/);
  });

  it("accepts a token issued 10 s in the future, and refuses it with 0", async () => {
    const token = await signed({ iat: now() + 10, exp: now() + 600 });
    expect(await byDefault(token)).toEqual({ id: "clock-user", isAdmin: false });
    expect(await refusal(strict, token)).toMatch(/^Token issued in the future/);
  });

  it("JWT_CLOCK_TOLERANCE takes whole seconds, 0 included; anything else stops the start naming it", () => {
    expect(loadConfig({ JWT_CLOCK_TOLERANCE: "0" }).JWT_CLOCK_TOLERANCE).toBe(0);
    expect(loadConfig({ JWT_CLOCK_TOLERANCE: "120" }).JWT_CLOCK_TOLERANCE).toBe(120);
    expect(loadConfig({ JWT_CLOCK_TOLERANCE: "" }).JWT_CLOCK_TOLERANCE).toBe(30);
    for (const bad of ["abc", "-1", "1.5", "30s", "1e3", "301"]) {
      expect(configProblems({ JWT_CLOCK_TOLERANCE: bad }), bad).toEqual([
        "JWT_CLOCK_TOLERANCE: JWT_CLOCK_TOLERANCE must be a whole number of seconds from 0 to 300, such as 30",
      ]);
    }
  });
});

describe("JWT_CLOCK_TOLERANCE reaches the server's verifier", () => {
  it("a server started with 0 refuses a token expired 10 s ago, one started with the default accepts it", async () => {
    const { startTestServer } = await import("../helpers/test-app.js");
    const { DEVELOPMENT_JWT_SECRET } = await import("../../src/auth/dev-secret.js");
    const expiredTenSecondsAgo = () =>
      new SignJWT({ sub: "clock-user" })
        .setProtectedHeader({ alg: "HS256" })
        .setExpirationTime(now() - 10)
        .sign(new TextEncoder().encode(DEVELOPMENT_JWT_SECRET));
    for (const [env, status] of [[{ JWT_CLOCK_TOLERANCE: "0" }, 401], [{}, 200]] as const) {
      const server = await startTestServer({ env });
      try {
        const token = await expiredTenSecondsAgo();
        const res = await server.gql("{ viewer { id } }", undefined, { token });
        expect(res.status).toBe(status);
      } finally {
        await server.close();
      }
    }
  }, 120_000);
});
