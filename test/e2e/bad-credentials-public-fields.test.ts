/**
 * Credentials that fail verification are refused with 401 whatever the operation asks for (an outside
 * authorization audit): the fields that need no token (creditTypes, creditCatalog, plans) answered
 * forged, expired and mis-addressed tokens 200 as if none had been sent. No token at all still reads them.
 */
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintToken } from "../../src/auth/mint.js";
import { startTestServer, type TestServer } from "../helpers/test-app.js";

const SECRET = "bad-credentials-test-secret-of-at-least-32-chars";
const PUBLIC_FIELDS = ["{ creditTypes { name } }", "{ creditCatalog { operation } }", "{ plans { name } }"];

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ env: { JWT_SECRET: SECRET, JWT_AUDIENCE: "credits-api" } });
}, 120_000);
afterAll(async () => {
  await server?.close();
});

async function badTokens(): Promise<Record<string, string>> {
  const key = new TextEncoder().encode(SECRET);
  return {
    expired: await new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject("ann").setAudience("credits-api").setExpirationTime(Math.floor(Date.now() / 1000) - 3600).sign(key),
    forged: await mintToken({ sub: "ann", secret: "another-secret-that-is-also-long-enough!", audience: "credits-api" }),
    wrongAudience: await mintToken({ sub: "ann", secret: SECRET, audience: "someone-else" }),
    garbage: "not.a.jwt",
  };
}

describe("fields that need no token", () => {
  it("answer without a token and with a good one", async () => {
    const good = await mintToken({ sub: "ann", secret: SECRET, audience: "credits-api" });
    for (const query of PUBLIC_FIELDS) {
      for (const token of [undefined, good]) {
        const answer = await server.gql(query, undefined, { token });
        expect(answer.status, `${query} with ${token ? "a good token" : "no token"}`).toBe(200);
        expect(answer.body.errors).toBeUndefined();
      }
    }
  });

  it("refuse a token that fails verification with 401 UNAUTHENTICATED and no data", async () => {
    for (const [name, token] of Object.entries(await badTokens())) {
      for (const query of PUBLIC_FIELDS) {
        const answer = await server.gql(query, undefined, { token });
        expect(answer.status, `${query} with a ${name} token`).toBe(401);
        expect(answer.body.data ?? null).toBeNull();
        expect(answer.body.errors).toEqual([expect.objectContaining({ extensions: expect.objectContaining({ code: "UNAUTHENTICATED" }) })]);
      }
    }
  });
});
