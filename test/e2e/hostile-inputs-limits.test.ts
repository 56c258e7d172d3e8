/**
 * The operation limits over HTTP, on PGlite and PostgreSQL: depth, metered fields, aliases,
 * directives, body size, batching and introspection. Each limit is tried just under and just over,
 * and a refused operation must have charged nothing. What the tests saw is written to
 * test-results/hostile-inputs-limits.json, which docs/reliability.md quotes.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintToken } from "../../src/auth/mint.js";
import { queryRows } from "../../src/db/database.js";
import { balancesOfSubscriptions } from "../../src/ledger/balances.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { fundedSubscription, startTestServer, userToken, type TestServer } from "../helpers/test-app.js";

const ENV = { RATE_LIMIT_DEFAULT: "100000/1m" };

interface Seen {
  status: number;
  code: string | null;
  reason: string | null;
  message: string | null;
  charges?: number;
}

const report: Record<string, Record<string, Seen | Record<string, unknown>>> = {};

afterAll(() => {
  mkdirSync("test-results", { recursive: true });
  writeFileSync("test-results/hostile-inputs-limits.json", `${JSON.stringify({ generatedAt: new Date().toISOString(), backends: report }, null, 2)}\n`);
});

/** A query `depth` fields deep, through __type (the only recursion the schema has). */
function depthQuery(depth: number): string {
  const inner = depth - 4;
  return `{ __type(name: "Query") { fields { type { ${"ofType { ".repeat(inner)}name${" }".repeat(inner)} } } } }`;
}

function aiAliases(count: number, from = 0): string {
  return Array.from({ length: count }, (_, i) => `a${from + i}: runAiTask(subscriptionId: $s, input: { prompt: "x" }) { output }`).join("\n");
}

/** `{ a0: __typename a1: __typename … }`: 3 lexical tokens an alias, 2 more for the braces. */
function typenameAliases(count: number): string {
  return `{ ${Array.from({ length: count }, (_, i) => `a${i}: __typename`).join(" ")} }`;
}

function seen(res: { status: number; body: any }): Seen {
  const error = res.body?.errors?.[0];
  return {
    status: res.status,
    code: error?.extensions?.code ?? null,
    reason: error?.extensions?.reason ?? null,
    message: error?.message ?? null,
    charges: res.body?.extensions?.credits?.charges?.length,
  };
}

async function rawPost(url: string, body: BodyInit, headers: Record<string, string> = {}, extra: RequestInit = {}) {
  const res = await fetch(`${url}/graphql`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body, ...extra });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, body: json, text };
}

/** Sends only the headers of a request that declares `length` bytes, and returns the status it gets before any body. */
function declaredLengthStatus(url: string, length: number): Promise<number> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { hostname, port, path: "/graphql", method: "POST", headers: { "content-type": "application/json", "content-length": String(length) } },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
        req.destroy();
      },
    );
    req.on("error", (err) => (err.message.includes("socket hang up") ? undefined : reject(err)));
    req.flushHeaders();
  });
}

describe.each(BACKENDS)("operation limits on %s", (backend) => {
  let database: TestDatabase;
  let server: TestServer;
  let production: TestServer;
  const seenHere: Record<string, Seen | Record<string, unknown>> = {};
  report[backend] = seenHere;

  beforeAll(async () => {
    database = await createTestDatabase(backend);
    server = await startTestServer({ database, env: ENV });
    production = await startTestServer({ database, env: { ...ENV, NODE_ENV: "production", JWT_SECRET: "hostile-limits-production-secret-32-chars-long" } });
  });
  afterAll(async () => {
    await production?.close();
    await server?.close();
    await database?.dispose();
  });

  async function ledgerRows(subscriptionId: string): Promise<number> {
    const rows = await queryRows<{ n: number | string }>(database.db, sql`select count(*) as n from credit_ledger where subscription_id = ${subscriptionId}::uuid`);
    return Number(rows[0].n);
  }
  async function aiBalance(subscriptionId: string): Promise<number> {
    return (await balancesOfSubscriptions(database.db, [subscriptionId])).find((b) => b.creditType === "ai")!.balance;
  }

  it(`depth ${12} is answered, depth 13 refused (BAD_USER_INPUT, 400)`, async () => {
    expect(server.config.MAX_QUERY_DEPTH).toBe(12);
    const ok = await server.gql(depthQuery(12));
    const refused = await server.gql(depthQuery(13));
    seenHere["depth 12"] = seen(ok);
    seenHere["depth 13"] = seen(refused);
    expect(ok.status).toBe(200);
    expect(ok.body.data.__type.fields.length).toBeGreaterThan(0);
    expect(refused.status).toBe(400);
    expect(refused.body.errors![0].extensions).toMatchObject({ code: "BAD_USER_INPUT", reason: "GRAPHQL_VALIDATION_FAILED" });
    expect(refused.body.errors![0].message).toBe(
      "Query depth limit of 12 exceeded, found 13. Simplify the operation or split it into several requests.",
    );
    expect(refused.body.data).toBeUndefined();
  });

  it("depth hidden in fragments is counted all the same", async () => {
    const query = `{ __type(name: "Query") { ...F } } fragment F on __Type { fields { type { ... on __Type { ${"ofType { ".repeat(9)}name${" }".repeat(9)} } } } }`;
    const res = await server.gql(query);
    seenHere["depth 13 through fragments"] = seen(res);
    expect(res.status).toBe(400);
    expect(res.body.errors![0].message).toMatch(/found 13/);
  });

  it("20 metered fields in one operation are charged; 21 are refused and nothing is charged", async () => {
    const owner = `limits-owner-${backend}`;
    const token = await userToken(owner);
    const subscriptionId = await fundedSubscription(database, owner, { ai: 100, leads: 100 });
    expect(server.config.MAX_METERED_FIELDS).toBe(20);

    const twenty = await server.gql(`mutation ($s: ID!) { ${aiAliases(20)} }`, { s: subscriptionId }, { token });
    seenHere["metered 20"] = seen(twenty);
    expect(twenty.status).toBe(200);
    expect(twenty.body.errors).toBeUndefined();
    expect(twenty.body.extensions!.credits.charges).toHaveLength(20);
    expect(await aiBalance(subscriptionId)).toBe(80);
    const rowsAfterTwenty = await ledgerRows(subscriptionId);

    const attempts: [string, string][] = [
      ["metered 21 aliases", `mutation ($s: ID!) { ${aiAliases(21)} }`],
      ["metered 21 through a fragment", `mutation ($s: ID!) { ${aiAliases(11)} ...Ten } fragment Ten on Mutation { ${aiAliases(10, 100)} }`],
      [
        "metered 21 of two fields",
        `mutation ($s: ID!) { ${aiAliases(11)} ${Array.from({ length: 10 }, (_, i) => `l${i}: searchLeads(subscriptionId: $s, input: { query: "q", limit: 1 }) { total }`).join(" ")} }`,
      ],
    ];
    for (const [label, query] of attempts) {
      const refused = await server.gql(query, { s: subscriptionId }, { token });
      seenHere[label] = seen(refused);
      expect(refused.status, label).toBe(400);
      expect(refused.body.errors![0].extensions, label).toMatchObject({ code: "BAD_USER_INPUT", reason: "GRAPHQL_VALIDATION_FAILED" });
      expect(refused.body.errors![0].message, label).toBe(
        "The operation selects 21 metered fields; at most 20 are allowed in one operation. Split it into several requests.",
      );
      expect(refused.body.data, label).toBeUndefined();
      expect(refused.body.extensions?.credits, label).toBeUndefined();
    }
    expect(await aiBalance(subscriptionId)).toBe(80);
    expect(await ledgerRows(subscriptionId)).toBe(rowsAfterTwenty);
  });

  it("creditPreview refuses what a run would refuse: 21 metered fields", async () => {
    const owner = `preview-limits-${backend}`;
    const token = await userToken(owner);
    const subscriptionId = await fundedSubscription(database, owner, { ai: 100 });
    const preview = `query($i: CreditPreviewInput!) { creditPreview(input: $i) { totals { type amount } } }`;
    const twenty = await server.gql(preview, { i: { subscriptionId, query: `mutation ($s: ID!) { ${aiAliases(20)} }`, variables: { s: subscriptionId } } }, { token });
    expect(twenty.body.data.creditPreview.totals).toEqual([{ type: "ai", amount: 20 }]);
    const refused = await server.gql(preview, { i: { subscriptionId, query: `mutation ($s: ID!) { ${aiAliases(21)} }`, variables: { s: subscriptionId } } }, { token });
    seenHere["preview of 21 metered"] = seen(refused);
    expect(refused.status).toBe(400);
    expect(refused.body.errors![0].extensions.code).toBe("BAD_USER_INPUT");
    expect(refused.body.errors![0].message).toMatch(/selects 21 metered fields; at most 20/);
  });

  it("creditPreview holds a previewed document to every operation limit, as a request: tokens, depth, aliases, directives, metered fields", async () => {
    const owner = `preview-every-limit-${backend}`;
    const token = await userToken(owner);
    const subscriptionId = await fundedSubscription(database, owner, { ai: 100 });
    const preview = `query($i: CreditPreviewInput!) { creditPreview(input: $i) { totals { type amount } } }`;
    const over: [string, string][] = [
      // Three tokens an alias: just over the token limit (the audit's document, previewed with 200 before).
      [`MAX_DOCUMENT_TOKENS (${server.config.MAX_DOCUMENT_TOKENS})`, typenameAliases(Math.ceil(server.config.MAX_DOCUMENT_TOKENS / 3))],
      ["MAX_QUERY_DEPTH", depthQuery(13)],
      ["MAX_ALIASES", `{ ${Array.from({ length: 51 }, (_, i) => `t${i}: creditTypes { name }`).join(" ")} }`],
      ["MAX_ALIASES (__typename)", typenameAliases(51)],
      ["MAX_DIRECTIVES", `{ ${Array.from({ length: 51 }, (_, i) => `t${i}: creditTypes @include(if: true) { name }`).join(" ")} }`],
      ["MAX_METERED_FIELDS", `mutation ($s: ID!) { ${aiAliases(21)} }`],
    ];
    for (const [limit, document] of over) {
      const variables = { s: subscriptionId };
      const direct = await server.gql(document, variables, { token });
      const previewed = await server.gql(preview, { i: { subscriptionId, query: document, variables } }, { token });
      seenHere[`preview over ${limit}`] = seen(previewed);
      expect(direct.status, `${limit}, sent`).toBe(400);
      expect(previewed.status, `${limit}, previewed`).toBe(400);
      expect(previewed.body.errors![0].extensions.code, limit).toBe("BAD_USER_INPUT");
      // The preview says what the request would be told (a validation message after "The document is not valid: ").
      expect(previewed.body.errors![0].message, limit).toContain(direct.body.errors![0].message);
      expect(previewed.body.data, limit).toBeNull();
    }
    expect(await aiBalance(subscriptionId)).toBe(100);
  });

  it("50 aliases are answered, 51 refused, __typename aliases counted like any other", async () => {
    const aliases = (n: number) => Array.from({ length: n }, (_, i) => `t${i}: creditTypes { name }`).join(" ");
    const fifty = await server.gql(`{ ${aliases(50)} }`);
    const fiftyOne = await server.gql(`{ ${aliases(51)} }`);
    const typenames = await server.gql(`{ ${aliases(50)} ${Array.from({ length: 20 }, (_, i) => `n${i}: __typename`).join(" ")} }`);
    const fiftyTypenames = await server.gql(typenameAliases(50));
    // The audit's document: 3,000 aliases of a field that costs no resolver, answered 200 with a 47 KB body before.
    const manyTypenames = await server.gql(typenameAliases(3000));
    seenHere["aliases 50"] = seen(fifty);
    seenHere["aliases 51"] = seen(fiftyOne);
    seenHere["aliases 50 + 20 __typename"] = seen(typenames);
    seenHere["aliases 50 __typename"] = seen(fiftyTypenames);
    seenHere["aliases 3000 __typename"] = seen(manyTypenames);
    expect(fifty.status).toBe(200);
    expect(Object.keys(fifty.body.data)).toHaveLength(50);
    expect(fiftyOne.status).toBe(400);
    expect(fiftyOne.body.errors![0].extensions.code).toBe("BAD_USER_INPUT");
    expect(fiftyOne.body.errors![0].message).toBe("Aliases limit of 50 exceeded, found 51. Simplify the operation or split it into several requests.");
    expect(typenames.status).toBe(400);
    expect(typenames.body.errors![0].message).toBe("Aliases limit of 50 exceeded, found 70. Simplify the operation or split it into several requests.");
    expect(fiftyTypenames.status).toBe(200);
    expect(Object.keys(fiftyTypenames.body.data)).toHaveLength(50);
    expect(manyTypenames.status).toBe(400);
    // Refused by the document budget (2,000 field selections), before graphql validates it.
    expect(manyTypenames.body.errors![0]).toMatchObject({
      message: "The document selects 3000 fields; at most 2000 are accepted in one document (a fragment's fields count once): split it into several requests.",
      extensions: { code: "BAD_USER_INPUT" },
    });
  });

  it("50 directives are answered, 51 refused", async () => {
    // @include and @skip may each appear once per field: 25 fields carry both.
    const twoEach = Array.from({ length: 25 }, (_, i) => `t${i}: creditTypes @include(if: true) @skip(if: false) { name }`).join(" ");
    const fifty = await server.gql(`{ ${twoEach} }`);
    const fiftyOne = await server.gql(`{ ${twoEach} last: creditTypes { name @include(if: true) } }`);
    seenHere["directives 50"] = seen(fifty);
    seenHere["directives 51"] = seen(fiftyOne);
    expect(fifty.status).toBe(200);
    expect(fiftyOne.status).toBe(400);
    expect(fiftyOne.body.errors![0].message).toMatch(/^Directives limit of 50 exceeded, found 51\./);
  });

  it("a body of MAX_BODY_BYTES is read; one byte more is 413, declared or streamed", async () => {
    const limit = server.config.MAX_BODY_BYTES;
    expect(limit).toBe(1_000_000);
    const bodyOf = (bytes: number) => {
      const head = '{"query":"{ creditTypes { name } }","variables":{"pad":"';
      const tail = '"}}';
      return head + "x".repeat(bytes - head.length - tail.length) + tail;
    };
    const exact = await rawPost(server.url, bodyOf(limit));
    const over = await rawPost(server.url, bodyOf(limit + 1));
    const streamed = await rawPost(
      server.url,
      new ReadableStream({
        start(controller) {
          const chunk = new TextEncoder().encode("x".repeat(100_000));
          for (let i = 0; i < 11; i++) controller.enqueue(chunk);
          controller.close();
        },
      }),
      {},
      { duplex: "half" } as RequestInit,
    );
    const declared = await declaredLengthStatus(server.url, 50_000_000);
    seenHere["body at the limit"] = { status: exact.status };
    seenHere["body limit + 1"] = seen(over);
    seenHere["body streamed without a length, 1.1 MB"] = seen(streamed);
    seenHere["declared length 50 MB"] = { status: declared };
    expect(exact.status).toBe(200);
    expect(over.status).toBe(413);
    expect(over.body.errors![0]).toMatchObject({
      message: "Request body too large: the limit is 1000000 bytes",
      extensions: { code: "BAD_USER_INPUT" },
    });
    expect(streamed.status).toBe(413);
    expect(declared).toBe(413);
  });

  it("a document repeating one field: 20 times answered, 21 refused by the document budget, thousands by its token count before graphql builds it", async () => {
    const few = await server.gql(`{ ${"__typename ".repeat(20)} }`);
    const tooMany = await server.gql(`{ ${"__typename ".repeat(21)} }`);
    const fields = "__typename ".repeat(Math.floor((server.config.MAX_BODY_BYTES - 100) / 11));
    const huge = await rawPost(server.url, JSON.stringify({ query: `{ ${fields} }` }));
    seenHere["20 repeats of one field"] = seen(few);
    seenHere["21 repeats of one field"] = seen(tooMany);
    seenHere["1 MB of one repeated field"] = seen(huge);
    expect(few.status).toBe(200);
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.errors![0]).toMatchObject({
      message: 'The operation selects "__typename" 21 times in one selection set (fragments included); at most 20 are accepted: select a field once (or use aliases).',
      extensions: { code: "BAD_USER_INPUT" },
    });
    expect(huge.status).toBe(400);
    expect(huge.body.errors![0]).toMatchObject({
      message: `The document has more than ${server.config.MAX_DOCUMENT_TOKENS} lexical tokens (MAX_DOCUMENT_TOKENS): put large inputs in variables, or split the operation.`,
      extensions: { code: "BAD_USER_INPUT", reason: "GRAPHQL_PARSE_FAILED" },
    });
  });

  it("batched requests are refused whole, before anything runs", async () => {
    const owner = `batch-owner-${backend}`;
    const token = await userToken(owner);
    const subscriptionId = await fundedSubscription(database, owner, { ai: 10 });
    const one = { query: `mutation ($s: ID!) { runAiTask(subscriptionId: $s, input: { prompt: "x" }) { output } }`, variables: { s: subscriptionId } };
    const res = await rawPost(server.url, JSON.stringify([one, one]), { authorization: `Bearer ${token}` });
    seenHere["batch of two metered mutations"] = seen(res);
    expect(res.status).toBe(400);
    expect(res.body.errors![0]).toMatchObject({
      message: "Batched requests are not accepted: send one operation per request, as a JSON object rather than an array.",
      extensions: { code: "BAD_USER_INPUT", reason: "BAD_REQUEST" },
    });
    // Answered by Apollo before any plugin runs, it still carries the request id like every error.
    expect(res.body.errors![0].extensions.requestId).toBe(res.headers.get("x-request-id"));
    expect(await aiBalance(subscriptionId)).toBe(10);
    expect(await ledgerRows(subscriptionId)).toBe(1);
  });

  it("introspection is refused with NODE_ENV=production and answered otherwise", async () => {
    const schemaQuery = `{ __schema { queryType { name } } }`;
    const typeQuery = `{ __type(name: "Mutation") { fields { name } } }`;
    const devSchema = await server.gql(schemaQuery);
    const prodSchema = await production.gql(schemaQuery);
    const prodType = await production.gql(typeQuery);
    const prodTypename = await production.gql(`{ __typename }`);
    seenHere["introspection (test mode)"] = seen(devSchema);
    seenHere["introspection __schema (production)"] = seen(prodSchema);
    seenHere["introspection __type (production)"] = seen(prodType);
    seenHere["__typename (production)"] = seen(prodTypename);
    expect(server.config.NODE_ENV).toBe("test");
    expect(devSchema.status).toBe(200);
    expect(devSchema.body.data.__schema.queryType.name).toBe("Query");
    for (const refused of [prodSchema, prodType]) {
      expect(refused.status).toBe(400);
      expect(refused.body.errors![0].extensions).toMatchObject({ code: "BAD_USER_INPUT", reason: "GRAPHQL_VALIDATION_FAILED" });
      // Apollo's own message named Apollo and its option (an outside docs audit).
      expect(refused.body.errors![0].message).toBe("Introspection is not available on this server.");
      expect(refused.body.data).toBeUndefined();
    }
    expect(prodTypename.status).toBe(200);
    expect(prodTypename.body.data).toEqual({ __typename: "Query" });
  });

  // An outside docs audit: Apollo's CSRF refusal named Apollo's own headers.
  it("a GET without a Content-Type is refused as a possible CSRF in our words, naming no library header", async () => {
    const res = await fetch(`${server.url}/graphql?query=${encodeURIComponent("{ creditTypes { name } }")}`);
    expect(res.status).toBe(400);
    const body = (await res.json()) as { errors: { message: string; extensions: Record<string, unknown> }[] };
    expect(body.errors[0]).toMatchObject({
      message: "Refused as a possible cross-site request forgery: send the request with a Content-Type of application/json.",
      extensions: { code: "BAD_USER_INPUT" },
    });
    expect(JSON.stringify(body)).not.toMatch(/apollo/i);
    const allowed = await fetch(`${server.url}/graphql?query=${encodeURIComponent("{ creditTypes { name } }")}`, { headers: { "content-type": "application/json" } });
    expect(allowed.status).toBe(200);
  });

  it("in production, errors do not suggest field names", async () => {
    const typo = `{ creditType { name } }`;
    const dev = await server.gql(typo);
    const prod = await production.gql(typo);
    seenHere["unknown field (test mode)"] = seen(dev);
    seenHere["unknown field (production)"] = seen(prod);
    expect(dev.body.errors![0].message).toMatch(/Did you mean "creditTypes"/);
    expect(prod.status).toBe(400);
    expect(prod.body.errors![0].message).toBe('Cannot query field "creditType" on type "Query".');
  });

  // Apollo's hideSchemaDetailsFromClientErrors cuts hints from validation errors only: the coercion
  // of variables and the documents creditPreview validates kept theirs (an outside audit).
  it("in production, neither variables nor previewed documents get hints", async () => {
    const owner = "hints-owner";
    const sub = await fundedSubscription(database, owner, { ai: 5 });
    const token = await mintToken({ sub: owner, secret: "hostile-limits-production-secret-32-chars-long" });
    const cases: [string, Record<string, unknown>, RegExp][] = [
      [`mutation ($i: AiTaskInput!) { runAiTask(subscriptionId: "${sub}", input: $i) { output } }`, { i: { prompt: "x", maxTokenz: 5 } }, /Field "maxTokenz" is not defined by type "AiTaskInput"\./],
      [`query ($g: UsageGroupBy!) { creditUsage(subscriptionId: "${sub}", groupBy: $g) { key } }`, { g: "operation" }, /Value "operation" does not exist in "UsageGroupBy" enum\./],
      [
        `query ($i: CreditPreviewInput!) { creditPreview(input: $i) { sufficient } }`,
        { i: { subscriptionId: sub, query: `mutation { runAiTsk }` } },
        /Cannot query field "runAiTsk" on type "Mutation"\./,
      ],
    ];
    for (const [query, variables, message] of cases) {
      const dev = await server.gql(query, variables, { token: await userToken(owner) });
      expect(dev.body.errors![0].message).toMatch(/Did you mean/);
      const prod = await production.gql(query, variables, { token });
      expect(prod.status).toBe(400);
      expect(prod.body.errors![0].extensions.code).toBe("BAD_USER_INPUT");
      expect(prod.body.errors![0].message).toMatch(message);
      expect(prod.body.errors![0].message).not.toMatch(/Did you mean|maxTokens|OPERATION|runAiTask/);
    }
  });

  it("the limits hold in production mode too", async () => {
    const aliases = Array.from({ length: 51 }, (_, i) => `t${i}: creditTypes { name }`).join(" ");
    const res = await production.gql(`{ ${aliases} }`);
    expect(res.status).toBe(400);
    expect(res.body.errors![0].extensions.code).toBe("BAD_USER_INPUT");
  });
});
