/**
 * credits.plugin listed twice in one Apollo Server's `plugins` ran every hook twice: an outside audit
 * saw each metered field held twice (two charges for path ["a"], one refunded "not run: the operation
 * stopped before this field"; ledger DEBIT, DEBIT, REFUND), and with a balance of 3 an affordable call
 * (price 2) refused 402 "needs 2, 1 available", answered with HTTP 200. Refused at start instead, with
 * the mistake named; two Apollo Servers sharing one credits core still both start and charge once.
 */
import { ApolloServer } from "@apollo/server";
import { buildSchema } from "graphql";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCredits, type Credits } from "../../src/library/index.js";
import { createLogger } from "../../src/observability/logger.js";
import { createPgliteDatabase, type TestDatabase } from "../helpers/databases.js";

interface Ctx {
  user?: string;
}

const SDL = (typeDefs: string) => `${typeDefs}
  type Query { hello: String }
  type Mutation { a(subscriptionId: ID!): Int! @credits(type: "calls", amount: 2) }`;

let database: TestDatabase;
let credits: Credits<Ctx>;
let schema: ReturnType<Credits<Ctx>["transform"]>;

beforeAll(async () => {
  database = await createPgliteDatabase();
  credits = await createCredits<Ctx>({
    database,
    creditTypes: ["calls"],
    caller: (ctx) => (ctx.user ? { id: ctx.user, isAdmin: false } : undefined),
    recovery: false,
    rateLimit: false,
    logger: createLogger("silent"),
  });
  schema = credits.transform(buildSchema(SDL(credits.typeDefs)), { Mutation: { a: () => 1 } });
}, 120_000);
afterAll(async () => {
  await credits?.close();
  await database?.dispose();
});

async function callA(server: ApolloServer<Ctx>, sub: string) {
  const response = await server.executeOperation({ query: `mutation { a(subscriptionId: "${sub}") }` }, { contextValue: { user: "ann" } });
  if (response.body.kind !== "single") throw new Error("expected a single result");
  return { status: response.http.status ?? 200, ...response.body.singleResult } as {
    status: number;
    data?: Record<string, unknown> | null;
    errors?: unknown[];
    extensions?: { credits?: { charges: { path: unknown[] }[] } };
  };
}

describe("credits.plugin listed twice in one Apollo Server's plugins", () => {
  it("refuses the server at start, naming the mistake, before any call is held twice", async () => {
    const server = new ApolloServer<Ctx>({ schema, plugins: [credits.plugin, credits.plugin] });
    await expect(server.start()).rejects.toThrow("credits.plugin is listed more than once in this Apollo Server's plugins: list it once");
    // Nothing was charged, and the server serves nothing.
    const sub = (await credits.admin.createSubscription({ ownerId: "ann", initialCredits: { calls: 3 } })).id;
    await expect(callA(server, sub)).rejects.toThrow();
    expect(await credits.admin.balances(sub)).toEqual({ calls: 3 });
  }, 60_000);

  it("leaves two Apollo Servers sharing one credits core, each listing it once, both charging each call once", async () => {
    const servers = [new ApolloServer<Ctx>({ schema, plugins: [credits.plugin] }), new ApolloServer<Ctx>({ schema, plugins: [credits.plugin] })];
    for (const server of servers) await server.start();
    try {
      const sub = (await credits.admin.createSubscription({ ownerId: "ann", initialCredits: { calls: 4 } })).id;
      for (const server of servers) {
        // The audit's affordable call: with one hold per field it is paid, never refused 402.
        const res = await callA(server, sub);
        expect(res.errors).toBeUndefined();
        expect(res.data).toEqual({ a: 1 });
        expect(res.extensions!.credits!.charges.map((c) => c.path)).toEqual([["a"]]);
      }
      expect(await credits.admin.balances(sub)).toEqual({ calls: 0 });
    } finally {
      for (const server of servers) await server.stop();
    }
  }, 60_000);
});
