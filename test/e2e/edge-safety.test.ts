/**
 * Safe at the edge (issue 15), over HTTP: CORS for browsers, the per-caller request limit before the
 * body is read, MAX_DOCUMENT_TOKENS, introspection depth, client errors logged at info, persisted
 * query hash mismatch as 400, ill-formed identity and ids, /health with a dead Redis, METRICS_TOKEN,
 * and a balance of every credit type for subscriptions opened before it existed.
 */
import { connect } from "node:net";
import { Writable } from "node:stream";
import { createHash } from "node:crypto";
import { sql } from "drizzle-orm";
import { getIntrospectionQuery } from "graphql";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp, type App } from "../../src/app/create-app.js";
import { DEVELOPMENT_JWT_SECRET } from "../../src/auth/dev-secret.js";
import { loadConfig } from "../../src/config/config.js";
import { queryRows } from "../../src/db/database.js";
import { createLogger } from "../../src/observability/logger.js";
import { closedPort } from "../helpers/closed-port.js";
import { redisAvailable, TEST_REDIS_URL } from "../helpers/services.js";
import { createPgliteDatabase, type TestDatabase } from "../helpers/databases.js";
import { adminToken, fundedSubscription, postGraphQL, startTestServer, userToken, type TestServer } from "../helpers/test-app.js";

const AI = `mutation Ai($s: ID!) { runAiTask(subscriptionId: $s, input: {prompt: "hi"}) { output } }`;

function ofTypeNest(depth: number): string {
  return `{ __schema { types { ${"ofType { ".repeat(depth)}name${" }".repeat(depth)} } } }`;
}

/** A token signed with the development secret whose `sub` is given verbatim (JSON may hold a lone surrogate). */
async function tokenWithSub(sub: string): Promise<string> {
  return new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject(sub).setIssuedAt().setExpirationTime("1h").sign(new TextEncoder().encode(DEVELOPMENT_JWT_SECRET));
}

describe("edge safety over HTTP", () => {
  let database: TestDatabase;
  let server: TestServer;
  const lines: Record<string, any>[] = [];

  beforeAll(async () => {
    database = await createPgliteDatabase();
    server = await startTestServer({ database, env: { CORS_ORIGINS: "https://app.example.com" } });
  }, 120_000);
  afterAll(async () => {
    await server?.close();
    await database?.dispose();
  });

  describe("CORS (item 2)", () => {
    it("answers a preflight from a configured origin and from localhost in development mode", async () => {
      for (const origin of ["https://app.example.com", "http://localhost:5173", "http://127.0.0.1:3000"]) {
        const res = await fetch(`${server.url}/graphql`, {
          method: "OPTIONS",
          headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type, idempotency-key" },
        });
        expect(res.status).toBe(204);
        expect(res.headers.get("access-control-allow-origin")).toBe(origin);
        expect(res.headers.get("access-control-allow-methods")).toContain("POST");
        const allowed = res.headers.get("access-control-allow-headers")!;
        for (const h of ["authorization", "content-type", "idempotency-key", "x-request-id"]) expect(allowed).toContain(h);
      }
    });

    it("sets Access-Control-Allow-Origin and exposes x-request-id and retry-after on the response", async () => {
      const res = await postGraphQL(`${server.url}/graphql`, "{ creditTypes { name } }", undefined, { headers: { origin: "http://localhost:5173" } });
      expect(res.status).toBe(200);
      expect(res.headers.get("access-control-allow-origin")).toBe("http://localhost:5173");
      expect(res.headers.get("access-control-expose-headers")).toBe("x-request-id, retry-after");
      expect(res.headers.get("vary")).toContain("Origin");
    });

    it("gives no CORS headers to an origin that is not allowed", async () => {
      const preflight = await fetch(`${server.url}/graphql`, { method: "OPTIONS", headers: { origin: "https://evil.example", "access-control-request-method": "POST" } });
      expect(preflight.headers.get("access-control-allow-origin")).toBeNull();
      const res = await postGraphQL(`${server.url}/graphql`, "{ creditTypes { name } }", undefined, { headers: { origin: "https://evil.example" } });
      expect(res.headers.get("access-control-allow-origin")).toBeNull();
    });
  });

  describe("documents and introspection (items 3, 4)", () => {
    it("refuses a document of more than MAX_DOCUMENT_TOKENS tokens with 400", async () => {
      const res = await server.gql(`{ ${"viewer { id } ".repeat(3_000)} }`);
      expect(res.status).toBe(400);
      expect(res.body.errors![0].extensions).toMatchObject({ code: "BAD_USER_INPUT", reason: "GRAPHQL_PARSE_FAILED" });
      expect(res.body.errors![0].message).toMatch(/more than 10000 lexical tokens/);
    });

    it("refuses ofType nested 40 deep and answers the standard introspection query (GraphiQL's and codegen's)", async () => {
      const deep = await server.gql(ofTypeNest(40));
      expect(deep.status).toBe(400);
      expect(deep.body.errors![0]).toMatchObject({ extensions: { code: "BAD_USER_INPUT" }, message: expect.stringMatching(/ofType/) });
      const loop = await server.gql(`{ __type(name: "Query") { fields { type { fields { type { fields { type { fields { name } } } } } } } } }`);
      expect(loop.status).toBe(400);
      for (const options of [{}, { descriptions: true, specifiedByUrl: true, directiveIsRepeatable: true, schemaDescription: true, inputValueDeprecation: true, oneOf: true }]) {
        const standard = await server.gql(getIntrospectionQuery(options));
        expect(standard.status).toBe(200);
        expect(standard.body.data.__schema.types.length).toBeGreaterThan(10);
      }
      expect((await server.gql(ofTypeNest(9))).status).toBe(200);
    });

    it("answers a persisted query whose hash does not match with 400, not 500", async () => {
      const query = "{ creditTypes { name } }";
      const res = await fetch(`${server.url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ query, extensions: { persistedQuery: { version: 1, sha256Hash: "0".repeat(64) } } }),
      });
      const body = await res.json();
      expect(res.status).toBe(400);
      expect(body.errors[0].extensions).toMatchObject({ code: "BAD_USER_INPUT", reason: "PERSISTED_QUERY_HASH_MISMATCH" });
      const good = createHash("sha256").update(query).digest("hex");
      const ok = await fetch(`${server.url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ query, extensions: { persistedQuery: { version: 1, sha256Hash: good } } }),
      });
      expect(ok.status).toBe(200);
    });
  });

  describe("request bodies", () => {
    it("refuses a body that is not valid UTF-8 (400), instead of running and charging a call with U+FFFD in place of its bytes", async () => {
      const owner = "utf8-owner";
      const subscriptionId = await fundedSubscription(database, owner, { ai: 10 });
      const json = JSON.stringify({ query: AI.replace('"hi"', '"PROMPT"'), variables: { s: subscriptionId } });
      const [head, tail] = json.split("PROMPT");
      const body = Buffer.concat([Buffer.from(head), Buffer.from([0xff, 0xc3, 0x28]), Buffer.from(tail)]);
      const res = await fetch(`${server.url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${await userToken(owner)}` },
        body,
      });
      expect(res.status).toBe(400);
      const answer = (await res.json()) as { errors: { message: string; extensions: Record<string, unknown> }[] };
      expect(answer.errors).toEqual([
        {
          message: "The request body is not valid UTF-8: send JSON encoded as UTF-8",
          extensions: { code: "BAD_USER_INPUT", requestId: res.headers.get("x-request-id") },
        },
      ]);
      const [balance] = await queryRows<{ balance: number }>(
        database.db,
        sql`select balance from credit_balances where subscription_id = ${subscriptionId}::uuid and credit_type = 'ai'`,
      );
      expect(Number(balance.balance)).toBe(10);
      // The same call in valid UTF-8 (a byte-order mark before it is allowed) runs.
      const valid = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(`${head}hé${tail}`)]);
      const ok = await fetch(`${server.url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${await userToken(owner)}` },
        body: valid,
      });
      expect(ok.status).toBe(200);
    });

    // Media types are case-insensitive (RFC 9110 8.3.1): an upper-case one was answered 400 "POST
    // body missing, invalid Content-Type …" (an outside audit).
    it("takes a JSON body whatever the case of its content type", async () => {
      for (const contentType of ["APPLICATION/JSON", "Application/Json; charset=UTF-8", "application/json;charset=utf-8"]) {
        const res = await fetch(`${server.url}/graphql`, {
          method: "POST",
          headers: { "content-type": contentType },
          body: JSON.stringify({ query: "{ creditTypes { name } }" }),
        });
        expect([contentType, res.status]).toEqual([contentType, 200]);
        expect(((await res.json()) as { data: { creditTypes: unknown[] } }).data.creditTypes.length).toBeGreaterThan(0);
      }
    });
  });

  describe("identity and ids (item 5, issue 14 item 3)", () => {
    // node:http keeps the first of two Authorization headers: the request ran as the first's caller
    // whatever the second said (an outside audit). Sent raw: fetch joins headers of one name.
    it("refuses a request with two Authorization headers (401), in either order", async () => {
      const subscriptionId = await fundedSubscription(database, "two-headers-owner", { ai: 10 });
      const owner = await userToken("two-headers-owner");
      const stranger = await userToken("two-headers-stranger");
      const body = JSON.stringify({ query: `query ($s: ID!) { subscription(id: $s) { id } }`, variables: { s: subscriptionId } });
      const port = Number(new URL(server.url).port);
      const send = (first: string, second: string) =>
        new Promise<string>((resolve, reject) => {
          // write, not end: a client that closes its side first is taken as gone (httpAllowHalfOpen).
          const socket = connect(port, "127.0.0.1", () =>
            socket.write(
              `POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer ${first}\r\nAuthorization: Bearer ${second}\r\n` +
                `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
            ),
          );
          let answer = "";
          socket.on("data", (chunk) => (answer += chunk));
          socket.on("end", () => resolve(answer));
          socket.on("error", reject);
        });
      for (const [first, second] of [[owner, stranger], [owner, "garbage"], [stranger, owner]]) {
        const answer = await send(first, second);
        expect(answer.split("\r\n")[0]).toBe("HTTP/1.1 401 Unauthorized");
        expect(answer).toMatch(/"code":"UNAUTHENTICATED"/);
        expect(answer).toMatch(/Send one Authorization header: this request has 2/);
      }
      // One header still works.
      expect((await server.gql(`query ($s: ID!) { subscription(id: $s) { id } }`, { s: subscriptionId }, { token: owner })).status).toBe(200);
    });

    // node:http joins two Idempotency-Key headers into "a, b", a key of its own that neither retry
    // would send (an outside audit of client retries): the call ran under it, unfindable.
    it("refuses a request with two Idempotency-Key headers (400) before anything is held", async () => {
      const subscriptionId = await fundedSubscription(database, "two-keys-owner", { ai: 10 });
      const owner = await userToken("two-keys-owner");
      const body = JSON.stringify({ query: AI, variables: { s: subscriptionId } });
      const port = Number(new URL(server.url).port);
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = connect(port, "127.0.0.1", () =>
          socket.write(
            `POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer ${owner}\r\n` +
              `Idempotency-Key: first-key\r\nIdempotency-Key: second-key\r\n` +
              `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
          ),
        );
        let text = "";
        socket.on("data", (chunk) => (text += chunk));
        socket.on("end", () => resolve(text));
        socket.on("error", reject);
      });
      expect(answer.split("\r\n")[0]).toBe("HTTP/1.1 400 Bad Request");
      expect(answer).toMatch(/"code":"BAD_USER_INPUT"/);
      expect(answer).toMatch(/Send one Idempotency-Key header: this request has 2/);
      const balances = await server.gql(`query ($s: ID!) { subscription(id: $s) { balances { type balance held } } }`, { s: subscriptionId }, { token: owner });
      expect(balances.body.data.subscription.balances.find((b: { type: string }) => b.type === "ai")).toEqual({ type: "ai", balance: 10, held: 0 });
    });

    it("refuses a token whose sub holds a lone surrogate or a control character (401)", async () => {
      const subscriptionId = await fundedSubscription(database, "eve\ufffd", { ai: 10 });
      for (const sub of ["eve\ud800", "eve\udc00x", "bob\u0007", "bob\u0085x"]) {
        const token = await tokenWithSub(sub);
        const viewer = await server.gql(`{ viewer { id subscriptions { id } } }`, undefined, { token });
        expect(viewer.status).toBe(401);
        expect(viewer.body.errors![0].extensions.code).toBe("UNAUTHENTICATED");
        const metered = await server.gql(AI, { s: subscriptionId }, { token });
        expect(metered.status).toBe(401);
      }
    });

    it("refuses ill-formed Unicode in variables and literals before anything is charged (400)", async () => {
      const owner = "unicode-owner";
      const token = await userToken(owner);
      const s = await fundedSubscription(database, owner, { ai: 10 });
      const prompt = await server.gql(`mutation($s: ID!, $p: String!) { runAiTask(subscriptionId: $s, input: {prompt: $p}) { output } }`, { s, p: "abc\ud800" }, { token });
      expect(prompt.status).toBe(400);
      expect(prompt.body.errors![0]).toMatchObject({ extensions: { code: "BAD_USER_INPUT" }, message: expect.stringMatching(/variables\.p: .*well-formed Unicode/) });
      const key = await server.gql(`mutation($s: ID!, $i: AiTaskInput!) { runAiTask(subscriptionId: $s, input: $i) { output } }`, { s, i: { ["pr\udfffompt"]: "x", prompt: "x" } }, { token });
      expect(key.status).toBe(400);
      // A raw lone surrogate in the document's text (JSON can carry one).
      const literal = await server.gql(`mutation($s: ID!) { runAiTask(subscriptionId: $s, input: {prompt: "abc\ud800"}) { output } }`, { s }, { token });
      expect(literal.status).toBe(400);
      expect(literal.body.errors![0].extensions.code).toBe("BAD_USER_INPUT");
      const balance = await server.gql(`query($id: ID!) { subscription(id: $id) { balances { type balance } } }`, { id: s }, { token });
      expect(balance.body.data.subscription.balances).toContainEqual({ type: "ai", balance: 10 });
    });

    it("normalises upper-case subscription ids, with and without an Idempotency-Key", async () => {
      const owner = "upper-owner";
      const token = await userToken(owner);
      const s = await fundedSubscription(database, owner, { ai: 10 });
      const upper = s.toUpperCase();
      const plain = await server.gql(AI, { s: upper }, { token });
      expect(plain.status).toBe(200);
      expect(plain.body.extensions!.credits.charges[0].subscriptionId).toBe(s);
      const keyed = await server.gql(AI, { s: upper }, { token, headers: { "idempotency-key": "upper-case-1" } });
      expect(keyed.status).toBe(200);
      const replay = await server.gql(AI, { s }, { token, headers: { "idempotency-key": "upper-case-1" } });
      expect(replay.status).toBe(200);
      expect(replay.body.extensions!.credits.charges[0].replayed).toBe(true);
      const read = await server.gql(`query($id: ID!) { subscription(id: $id) { id } }`, { id: upper }, { token });
      expect(read.body.data.subscription.id).toBe(s);
      const ledger = await queryRows<{ subscription_id: string }>(database.db, sql`select distinct subscription_id::text from credit_ledger where actor_id = ${owner}`);
      expect(ledger).toEqual([{ subscription_id: s }]);
      const admin = await adminToken();
      const grant = await server.gql(`mutation($i: GrantCreditsInput!) { grantCredits(input: $i) { subscriptionId } }`, { i: { subscriptionId: upper, type: "ai", amount: 1, reason: "upper" } }, { token: admin });
      expect(grant.status).toBe(200);
      expect(grant.body.data.grantCredits.subscriptionId).toBe(s);
    });
  });

  describe("/metrics with METRICS_TOKEN (item 7)", () => {
    let guarded: TestServer;
    beforeAll(async () => {
      guarded = await startTestServer({ database, env: { METRICS_TOKEN: "metrics-token-for-the-test" } });
    });
    afterAll(async () => guarded?.close());

    it("requires Authorization: Bearer <METRICS_TOKEN>", async () => {
      expect((await fetch(`${guarded.url}/metrics`)).status).toBe(401);
      expect((await fetch(`${guarded.url}/metrics`, { headers: { authorization: "Bearer wrong" } })).status).toBe(401);
      const ok = await fetch(`${guarded.url}/metrics`, { headers: { authorization: "Bearer metrics-token-for-the-test" } });
      expect(ok.status).toBe(200);
      expect(await ok.text()).toContain("rate_limit_store_failures_total");
      expect((await fetch(`${server.url}/metrics`)).status).toBe(200); // unset: open, as before
    });
  });

  describe("request limit and client-error logs (items 3, 4)", () => {
    let app: App;
    let url: string;
    beforeAll(async () => {
      const stream = new Writable({
        write(chunk, _enc, done) {
          for (const line of String(chunk).split("\n")) if (line.trim()) lines.push(JSON.parse(line));
          done();
        },
      });
      const config = loadConfig({ PGLITE_DIR: "memory://", NODE_ENV: "test", LOG_LEVEL: "info", REQUEST_LIMIT: "5/1m" });
      app = await createApp(config, { database, logger: createLogger("info", stream) });
      url = await app.listen(0, "127.0.0.1");
    });
    afterAll(async () => app?.close());

    it("refuses the caller's requests past REQUEST_LIMIT with 429 and Retry-After, before the body is read; other callers pass", async () => {
      const big = `{ ${"viewer { id } ".repeat(60_000)} }`;
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await postGraphQL(`${url}/graphql`, "{ creditTypes { name } }")).status);
      expect(statuses).toEqual([200, 200, 200, 200, 200]);
      const refused = await postGraphQL(`${url}/graphql`, big);
      expect(refused.status).toBe(429);
      expect(refused.body.errors![0].extensions).toMatchObject({ code: "RATE_LIMITED" });
      expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      // A caller with a valid token is counted by its subject, not by the shared address.
      const token = await userToken("limited-user");
      expect((await postGraphQL(`${url}/graphql`, "{ viewer { id } }", undefined, { token })).status).toBe(200);
      const metrics = await (await fetch(`${url}/metrics`)).text();
      expect(metrics).toMatch(/http_requests_limited_total 1\b/);
    });

    it("logs a client's invalid document once at info, without a stack, never as an unexpected error", async () => {
      const token = await userToken("log-user");
      const before = lines.length;
      const res = await postGraphQL(`${url}/graphql`, `{ ${Array.from({ length: 120 }, (_, i) => `nope${i}`).join(" ")} }`, undefined, { token });
      expect(res.status).toBe(400);
      const written = lines.slice(before);
      expect(written.filter((l) => l.level >= 50)).toEqual([]);
      const client = written.filter((l) => l.msg === "client error");
      expect(client).toHaveLength(1);
      expect(client[0]).toMatchObject({ level: 30, reason: "GRAPHQL_VALIDATION_FAILED" });
      expect(JSON.stringify(written)).not.toMatch(/"stack"/);
    });
  });
});

describe("client errors with a code, logged", () => {
  let database: TestDatabase;
  let app: App;
  let url: string;
  const logged: Record<string, any>[] = [];
  beforeAll(async () => {
    database = await createPgliteDatabase();
    const stream = new Writable({
      write(chunk, _enc, done) {
        for (const line of String(chunk).split("\n")) if (line.trim()) logged.push(JSON.parse(line));
        done();
      },
    });
    const config = loadConfig({ PGLITE_DIR: "memory://", NODE_ENV: "test", LOG_LEVEL: "info", SIMULATE_FAILURES: "1" });
    app = await createApp(config, { database, logger: createLogger("info", stream) });
    url = await app.listen(0, "127.0.0.1");
  }, 120_000);
  afterAll(async () => {
    await app?.close();
    await database?.dispose();
  });

  // An outside operator audit: a 401 on a query, or a resolver's own BAD_USER_INPUT, left no log line,
  // so its request id (which the client is given) led nowhere.
  it("logs a 401 and a resolver's BAD_USER_INPUT once each at info with the request id, without a stack", async () => {
    const badToken = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.badsig";
    const unauthenticated = await postGraphQL(`${url}/graphql`, "{ viewer { id } }", undefined, { token: badToken, headers: { "x-request-id": "logged-401" } });
    expect(unauthenticated.status).toBe(401);

    const owner = "logged-input-owner";
    const sub = await fundedSubscription(database, owner, { leads: 10 });
    const input = await postGraphQL(
      `${url}/graphql`,
      `mutation($s: ID!) { searchLeads(subscriptionId: $s, input: { query: "x", limit: 1 }) { leads { name } } }`,
      { s: sub },
      { token: await userToken(owner), headers: { "x-request-id": "logged-input", "x-simulate-failure": "input" } },
    );
    expect(input.body.errors![0].extensions.code).toBe("BAD_USER_INPUT");

    for (const [requestId, reason] of [["logged-401", "UNAUTHENTICATED"], ["logged-input", "BAD_USER_INPUT"]]) {
      const lines = logged.filter((l) => l.requestId === requestId);
      expect(lines.filter((l) => l.level >= 50), requestId).toEqual([]);
      const client = lines.filter((l) => l.msg === "client error");
      expect(client, JSON.stringify(lines)).toHaveLength(1);
      expect(client[0]).toMatchObject({ level: 30, reason });
      expect(JSON.stringify(lines)).not.toMatch(/"stack"/);
    }
  });
});

describe("health with a dead rate-limit store (item 7)", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ env: { REDIS_URL: `redis://127.0.0.1:${await closedPort()}`, RATE_LIMIT_STORE_TIMEOUT: "200ms" } });
  }, 120_000);
  afterAll(async () => server?.close());

  it("says degraded with rateLimitStore down (still 200), counts store failures apart, and answers metered calls 429 'limiter unavailable'", async () => {
    const health = await fetch(`${server.url}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: "degraded", database: "up", rateLimitStore: "down" });
    const owner = "redis-down-owner";
    const s = await fundedSubscription(server.app.services.database, owner, { ai: 5 });
    const res = await server.gql(AI, { s }, { token: await userToken(owner) });
    // The choice (RATE_LIMIT_ON_STORE_ERROR=closed, the default): refused as RATE_LIMITED with
    // Retry-After 1 and a message that names the limiter, nothing charged; "open" lets it run.
    expect(res.status).toBe(429);
    expect(res.body.errors![0]).toMatchObject({ extensions: { code: "RATE_LIMITED", retryAfterSeconds: 1 }, message: expect.stringMatching(/Rate limiter unavailable/) });
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/rate_limit_store_failures_total\{store="redis"\} [1-9]/);
  });
});

describe.runIf(redisAvailable)("health with a live Redis (item 7)", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ env: { REDIS_URL: TEST_REDIS_URL, RATE_LIMIT_KEY_PREFIX: `gc:test:health:${Date.now()}:` } });
  }, 120_000);
  afterAll(async () => server?.close());

  it("says ok with rateLimitStore up", async () => {
    const health = await fetch(`${server.url}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: "ok", database: "up", rateLimitStore: "up" });
  });
});

describe("a credit type added after a subscription was opened (item 8)", () => {
  let database: TestDatabase;
  let server: TestServer;
  let subscriptionId: string;
  const owner = "old-customer";

  beforeAll(async () => {
    database = await createPgliteDatabase();
    subscriptionId = await fundedSubscription(database, owner, { ai: 5 });
    // As if "skiptrace" had not existed when this subscription was opened.
    await queryRows(database.db, sql`delete from credit_balances where subscription_id = ${subscriptionId}::uuid and credit_type = 'skiptrace' returning subscription_id`);
    server = await startTestServer({ database });
  }, 120_000);
  afterAll(async () => {
    await server?.close();
    await database?.dispose();
  });

  it("reads as 0 and answers 402 when spent, never 404", async () => {
    const token = await userToken(owner);
    const read = await server.gql(`query($id: ID!) { subscription(id: $id) { balances { type balance } } }`, { id: subscriptionId }, { token });
    expect(read.body.data.subscription.balances).toContainEqual({ type: "skiptrace", balance: 0 });
    const res = await server.gql(
      `mutation($s: ID!) { lookupPhones(subscriptionId: $s, input: {phones: ["+15555550100"]}) { results { phone } } }`,
      { s: subscriptionId },
      { token },
    );
    expect(res.status).toBe(402);
    expect(res.body.errors![0].extensions).toMatchObject({ code: "INSUFFICIENT_CREDITS", creditType: "skiptrace", available: 0 });
  });
});

describe("a document past the parser's stack, with MAX_DOCUMENT_TOKENS raised", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ env: { MAX_DOCUMENT_TOKENS: "1000000" } });
  }, 120_000);
  afterAll(async () => server?.close());

  it("is still a 400 that says it is nested too deeply", async () => {
    const res = await server.gql(`{ viewer ${"{a".repeat(100_000)}${"}".repeat(100_001)}`);
    expect(res.status).toBe(400);
    expect(res.body.errors![0].message).toMatch(/nested too deeply/);
  });
});
