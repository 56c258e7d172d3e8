/**
 * Apollo Server options a host turns on, over Apollo's HTTP entry point (executeHTTPGraphQLRequest,
 * what startStandaloneServer and expressMiddleware call), in development mode, where Apollo would
 * add stack traces:
 * - allowBatchedHttpRequests: the operations of a batch share one HTTP response head, so the status
 *   of one operation's error (a 402) would be the whole batch's, paid results included: a batch of
 *   several answers 200, and each operation's errors carry their own codes;
 * - automatic persisted queries: a sha256Hash that is not the query's is the client's mistake,
 *   400 BAD_USER_INPUT as on the server, not a masked 500;
 * - a context function that throws: a plain Error is the host's failure, masked as
 *   INTERNAL_SERVER_ERROR with a requestId (its message and stack logged, never sent); a coded
 *   GraphQLError (UNAUTHENTICATED) keeps its code and message, with its status, and no stack.
 */
import { ApolloServer, HeaderMap } from "@apollo/server";
import { createHash } from "node:crypto";
import { buildSchema, GraphQLError } from "graphql";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCredits, type Credits } from "../../src/library/index.js";
import { createLogger } from "../../src/observability/logger.js";
import { createPgliteDatabase, type TestDatabase } from "../helpers/databases.js";
import { captureLogLines } from "../helpers/log-lines.js";

interface Ctx {
  user?: string;
}

interface Answer {
  data?: Record<string, unknown> | null;
  errors?: { message: string; extensions: Record<string, any> }[];
  extensions?: { credits?: any };
}

const SDL = (typeDefs: string) => `${typeDefs}
  type Query { hello: String }
  type Mutation { work(subscriptionId: ID!, n: Int!): Int! @credits(type: "calls", amount: 2) }`;
const RESOLVERS = { Query: { hello: () => "hi" }, Mutation: { work: (_: unknown, { n }: { n: number }) => n } };
const MASKED = /^Internal server error: the request failed on our side/;

let database: TestDatabase;
let credits: Credits<Ctx>;
let server: ApolloServer<Ctx>;
let log: Record<string, any>[];

beforeAll(async () => {
  database = await createPgliteDatabase();
  const captured = captureLogLines();
  log = captured.lines;
  credits = await createCredits<Ctx>({
    database,
    creditTypes: ["calls"],
    caller: (ctx) => (ctx.user ? { id: ctx.user, isAdmin: false } : undefined),
    recovery: false,
    rateLimit: false,
    logger: createLogger("info", captured.destination),
  });
  const schema = credits.transform(buildSchema(SDL(credits.typeDefs)), RESOLVERS);
  server = new ApolloServer<Ctx>({ schema, plugins: [credits.plugin], nodeEnv: "development", allowBatchedHttpRequests: true });
  await server.start();
}, 120_000);
afterAll(async () => {
  await server?.stop();
  await credits?.close();
  await database?.dispose();
});

async function post(body: unknown, context: () => Promise<Ctx> = async () => ({ user: "ann" })) {
  const response = await server.executeHTTPGraphQLRequest({
    httpGraphQLRequest: { method: "POST", headers: new HeaderMap([["content-type", "application/json"]]), search: "", body },
    context,
  });
  if (response.body.kind !== "complete") throw new Error("expected a complete body");
  return { status: response.status ?? 200, headers: response.headers, body: JSON.parse(response.body.string) as Answer | Answer[] };
}

const work = (sub: string, n: number) => ({ query: `mutation { work(subscriptionId: "${sub}", n: ${n}) }` });

describe("a batch of operations (allowBatchedHttpRequests)", () => {
  it("answers 200 when one operation is refused 402 and another paid: each carries its own code and charge", async () => {
    const paying = (await credits.admin.createSubscription({ ownerId: "ann", initialCredits: { calls: 10 } })).id;
    const empty = (await credits.admin.createSubscription({ ownerId: "ann", initialCredits: { calls: 1 } })).id;
    for (const order of [
      [work(paying, 1), work(empty, 2)],
      [work(empty, 2), work(paying, 1)],
    ]) {
      const { status, body } = await post(order);
      expect(status).toBe(200);
      const answers = body as Answer[];
      const paid = answers.find((a) => a.data?.work !== undefined && a.data.work !== null)!;
      const refused = answers.find((a) => a.errors)!;
      expect(paid.extensions!.credits.charges[0]).toMatchObject({ cost: 2 });
      expect(refused.errors![0].extensions).toMatchObject({ code: "INSUFFICIENT_CREDITS", required: 2, available: 1 });
    }
    expect(await credits.admin.balances(paying)).toEqual({ calls: 6 });
    expect(await credits.admin.balances(empty)).toEqual({ calls: 1 });
  });

  it("a single operation keeps its own status, and a batch of one is answered as that operation", async () => {
    const empty = (await credits.admin.createSubscription({ ownerId: "ann", initialCredits: { calls: 1 } })).id;
    expect((await post(work(empty, 1))).status).toBe(402);
    expect((await post([work(empty, 1)])).status).toBe(402);
  });
});

describe("an automatic persisted query whose hash is not its query's", () => {
  it("is 400 BAD_USER_INPUT saying so, as on the server, not a masked 500", async () => {
    const query = "{ hello }";
    const wrong = createHash("sha256").update("{ other }").digest("hex");
    const { status, body } = await post({ query, extensions: { persistedQuery: { version: 1, sha256Hash: wrong } } });
    expect(status).toBe(400);
    const errors = (body as Answer).errors!;
    expect(errors[0].extensions).toMatchObject({ code: "BAD_USER_INPUT", reason: "PERSISTED_QUERY_HASH_MISMATCH" });
    expect(errors[0].message).toMatch(/sha256Hash is not the SHA-256 of its query/);
    // The right hash still works.
    const right = createHash("sha256").update(query).digest("hex");
    const ok = await post({ query, extensions: { persistedQuery: { version: 1, sha256Hash: right } } });
    expect(ok.status).toBe(200);
    expect((ok.body as Answer).data).toEqual({ hello: "hi" });
  });
});

describe("a context function that throws", () => {
  it("a plain Error is masked (500, requestId, no message or stack of the host's), and logged with its detail", async () => {
    const before = log.length;
    const { status, body } = await post({ query: "{ hello }" }, async () => {
      throw new Error("session store down at 10.0.0.7 SECRET_DETAIL");
    });
    expect(status).toBe(500);
    const errors = (body as Answer).errors!;
    expect(errors).toHaveLength(1);
    expect(errors[0].message).toMatch(/Internal server error: the request failed on our side/);
    expect(errors[0].extensions).toEqual({ code: "INTERNAL_SERVER_ERROR", requestId: expect.any(String) });
    expect(JSON.stringify(body)).not.toMatch(/SECRET_DETAIL|10\.0\.0\.7|\.ts:|node_modules/);
    const logged = log.slice(before).find((l) => l.event === "credits.context_failed");
    expect(logged).toMatchObject({ level: 50, requestId: errors[0].extensions.requestId });
    expect(JSON.stringify(logged)).toMatch(/SECRET_DETAIL/);
  });

  it("a GraphQLError with a code of the closed set keeps its code and message, with its HTTP status and no stack", async () => {
    const { status, body } = await post({ query: "{ hello }" }, async () => {
      throw new GraphQLError("Your session has expired: sign in again", { extensions: { code: "UNAUTHENTICATED" } });
    });
    expect(status).toBe(401);
    const errors = (body as Answer).errors!;
    expect(errors[0].message).toBe("Your session has expired: sign in again");
    expect(errors[0].extensions).toEqual({ code: "UNAUTHENTICATED", requestId: expect.any(String) });
  });

  it("a GraphQLError with a code of its own is masked like a plain Error", async () => {
    const { status, body } = await post({ query: "{ hello }" }, async () => {
      throw new GraphQLError("tenant lookup failed SECRET_DETAIL", { extensions: { code: "TENANT_DB_DOWN" } });
    });
    expect(status).toBe(500);
    const errors = (body as Answer).errors!;
    expect(errors[0].message).toMatch(MASKED);
    expect(errors[0].extensions).toEqual({ code: "INTERNAL_SERVER_ERROR", requestId: expect.any(String) });
  });
});
