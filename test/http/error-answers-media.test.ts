/**
 * The error answers the server writes itself, before Apollo (a 429 of REQUEST_LIMIT, a 413, a
 * malformed JSON body), in the media type the request's Accept header asks for, as Apollo's own
 * answers are; and a mutation sent as GET refused with Apollo's 405 and `Allow: POST`, as the
 * GraphQL-over-HTTP spec requires. An outside audit with real clients: these came as
 * application/json whatever was asked (Apollo Client 4, accepting only
 * application/graphql-response+json, then read the README's request-level RATE_LIMITED as a bare
 * ServerError), and the GET mutation as 400 while it still said `Allow: POST`.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPgliteDatabase, type TestDatabase } from "../helpers/databases.js";
import { startTestServer, userToken, type TestServer } from "../helpers/test-app.js";

const GRAPHQL_RESPONSE = "application/graphql-response+json";

describe("error answers written before GraphQL runs", () => {
  let database: TestDatabase;
  let server: TestServer;

  beforeAll(async () => {
    database = await createPgliteDatabase();
    server = await startTestServer({ database, env: { REQUEST_LIMIT: "3/1m", MAX_BODY_BYTES: "2000" } });
  }, 120_000);
  afterAll(async () => {
    await server?.close();
    await database?.dispose();
  });

  const post = (body: string, headers: Record<string, string>) =>
    fetch(`${server.url}/graphql`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
  /** Each caller of its own (REQUEST_LIMIT counts per token subject): only the 429 test reaches the limit. */
  let callers = 0;
  const freshCaller = async () => ({ authorization: `Bearer ${await userToken(`media-caller-${++callers}`)}` });

  async function expectGraphQLErrors(res: Response, status: number, mediaType: string, code: string) {
    expect(res.status).toBe(status);
    expect(res.headers.get("content-type")).toBe(`${mediaType}; charset=utf-8`);
    const body = (await res.json()) as { errors: { extensions: { code: string } }[] };
    expect(body.errors[0].extensions.code).toBe(code);
  }

  it.each([
    [GRAPHQL_RESPONSE, GRAPHQL_RESPONSE],
    [`${GRAPHQL_RESPONSE}, application/json;q=0.5`, GRAPHQL_RESPONSE],
    ["application/json", "application/json"],
    ["*/*", "application/json"],
  ])("answers a malformed JSON body and a body over MAX_BODY_BYTES, Accept %s, as %s", async (accept, mediaType) => {
    await expectGraphQLErrors(await post('{"query":', { accept, ...(await freshCaller()) }), 400, mediaType, "BAD_USER_INPUT");
    const tooLarge = JSON.stringify({ query: `{ creditTypes { name } } #${"x".repeat(3000)}` });
    await expectGraphQLErrors(await post(tooLarge, { accept, ...(await freshCaller()) }), 413, mediaType, "BAD_USER_INPUT");
  });

  it("answers without an Accept header in application/json", async () => {
    await expectGraphQLErrors(await post('{"query":', await freshCaller()), 400, "application/json", "BAD_USER_INPUT");
  });

  it("answers the request-level 429 of REQUEST_LIMIT in the media type asked for", async () => {
    const token = await userToken("media-limited");
    const headers = { authorization: `Bearer ${token}`, accept: GRAPHQL_RESPONSE };
    const query = JSON.stringify({ query: "{ viewer { id } }" });
    for (let i = 0; i < 3; i++) expect((await post(query, headers)).status).toBe(200);
    const refused = await post(query, headers);
    expect(refused.headers.get("retry-after")).toMatch(/^\d+$/);
    await expectGraphQLErrors(refused, 429, GRAPHQL_RESPONSE, "RATE_LIMITED");
  });

  it("refuses a mutation sent as GET with 405 and Allow: POST, code BAD_USER_INPUT", async () => {
    const query = `mutation { runAiTask(subscriptionId: "x", input: { prompt: "hi" }) { output } }`;
    const res = await fetch(`${server.url}/graphql?query=${encodeURIComponent(query)}`, {
      headers: { "apollo-require-preflight": "true", authorization: `Bearer ${await userToken("media-get")}` },
    });
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("POST");
    const body = (await res.json()) as { errors: { message: string; extensions: { code: string } }[] };
    expect(body.errors[0].extensions.code).toBe("BAD_USER_INPUT");
    expect(body.errors[0].message).toMatch(/GET requests only support query operations/);
  });
});
