/**
 * What a refused token is told (DESIGN.md, "Errors": messages say what is wrong and what to do), and
 * the one rule for a user id that a token's `sub` shares with createSubscription's `ownerId`
 * (src/util/text.ts): at most 255 characters, not blank or invisible, no white space at either end,
 * no control characters, well-formed Unicode. The audit (REPORT.md, findings 1 and 3) found a future
 * `nbf` answered "the nbf claim is missing or not accepted", a numeric or null `sub` answered "the
 * sub claim is missing", and blank or padded subjects accepted as identities no subscription could
 * ever be opened for.
 */
import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { createTokenVerifier } from "../../src/auth/verifier.js";
import { mintToken } from "../../src/auth/mint.js";
import { UnauthenticatedError } from "../../src/errors/errors.js";

const SECRET = "unit-test-secret-of-enough-length-123456";
const key = new TextEncoder().encode(SECRET);
const verify = createTokenVerifier({ secret: SECRET, issuer: "https://issuer.test", audience: "credits", cacheSize: 0 });
const now = () => Math.floor(Date.now() / 1000);

/** A token signed with the right key whose claims are exactly `claims` (plus iss and aud unless given). */
function signed(claims: Record<string, unknown>): Promise<string> {
  return new SignJWT({ iss: "https://issuer.test", aud: "credits", ...claims }).setProtectedHeader({ alg: "HS256" }).sign(key);
}

async function refusal(token: string): Promise<string> {
  const err = await verify(token).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, "the token was accepted").toBeInstanceOf(UnauthenticatedError);
  expect((err as UnauthenticatedError).extensions.code).toBe("UNAUTHENTICATED");
  return (err as UnauthenticatedError).message;
}

describe("token messages say what is wrong", () => {
  it("a future nbf: not valid yet, not 'missing'", async () => {
    const message = await refusal(await signed({ sub: "u", nbf: now() + 3600, exp: now() + 7200 }));
    expect(message).toMatch(/^Token not valid yet: its nbf .*in the future/);
    expect(message).not.toMatch(/missing/);
  });

  it.each([
    ["a number", 123],
    ["null", null],
    ["an object", { id: "u" }],
    ["an array", ["u"]],
    ["a boolean", true],
  ])("a sub that is %s: the sub claim must be a string user id", async (_label, sub) => {
    const message = await refusal(await signed({ sub, exp: now() + 600 }));
    expect(message).toBe("Invalid token: the sub claim must be a string user id");
  });

  it("a token without sub: the sub claim is missing", async () => {
    expect(await refusal(await signed({ exp: now() + 600 }))).toMatch(/^Invalid token: the sub claim is missing/);
  });

  it("exp, nbf or iat that is not a number says so", async () => {
    expect(await refusal(await signed({ sub: "u", exp: "tomorrow" }))).toMatch(/the exp claim must be a number/);
    expect(await refusal(await signed({ sub: "u", nbf: "now" }))).toMatch(/the nbf claim must be a number/);
  });

  it("a wrong issuer or audience is named as such, not 'missing'", async () => {
    const wrongIssuer = await refusal(await signed({ sub: "u", iss: "https://elsewhere.test", exp: now() + 600 }));
    expect(wrongIssuer).toMatch(/iss claim/);
    expect(wrongIssuer).not.toMatch(/missing/);
    const wrongAudience = await refusal(await signed({ sub: "u", aud: "other", exp: now() + 600 }));
    expect(wrongAudience).toMatch(/aud claim/);
    expect(wrongAudience).not.toMatch(/missing/);
    const noIssuer = await refusal(await new SignJWT({ sub: "u", aud: "credits" }).setProtectedHeader({ alg: "HS256" }).sign(key));
    expect(noIssuer).toMatch(/the iss claim is missing/);
  });

  it("an algorithm that is not even a string is not echoed", async () => {
    const header = Buffer.from(JSON.stringify({ alg: { x: 1 } })).toString("base64url");
    const payload = Buffer.from(JSON.stringify({ sub: "u" })).toString("base64url");
    const message = await refusal(`${header}.${payload}.c2ln`);
    expect(message).toMatch(/algorithm/);
    expect(message).not.toMatch(/object/i);
  });
});

describe("a token's sub follows the one user-id rule", () => {
  const token = (sub: string) => mintToken({ sub, secret: SECRET, issuer: "https://issuer.test", audience: "credits" });

  it("accepts 255 characters and any visible Unicode", async () => {
    for (const sub of ["u".repeat(255), "алиса-😀", "a b", "auth0|5f7c8ec7c33c6c004bbafe82", "❤️"]) {
      expect(await verify(await token(sub))).toEqual({ id: sub, isAdmin: false });
    }
  });

  it("refuses 256 characters, naming the limit", async () => {
    expect(await refusal(await token("u".repeat(256)))).toMatch(/sub claim.*at most 255 characters/);
  });

  it.each([
    ["spaces", "   "],
    ["a no-break space", "\u00a0"],
    ["a zero-width space", "\u200b"],
    ["a word joiner and a BOM", "\u2060\ufeff"],
    ["a Hangul filler", "\u3164"],
    ["an ideographic space and a tab-free mix", "\u3000 \u2003"],
  ])("refuses a blank sub (%s) with 401 and a clear message", async (_label, sub) => {
    expect(await refusal(await token(sub))).toMatch(/^Invalid token: the sub claim .*blank/);
  });

  it.each([
    ["a leading space", " bob"],
    ["a trailing space", "bob "],
    ["both", " bob "],
    ["a trailing no-break space", "bob\u00a0"],
  ])("refuses a sub with %s: an ownerId may not have one either", async (_label, sub) => {
    expect(await refusal(await token(sub))).toMatch(/^Invalid token: the sub claim .*white space/);
  });

  it("still refuses control characters", async () => {
    expect(await refusal(await token("a\u0001b"))).toMatch(/sub claim .*control characters/);
  });
});
