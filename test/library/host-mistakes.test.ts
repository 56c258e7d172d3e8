/**
 * A host's mistakes, answered so that no money goes wrong and the host learns the cause:
 * - an Apollo Server without `plugins: [credits.plugin]` would hold and never settle: a metered call
 *   is refused before anything is held (masked 500 with a requestId), and the cause is logged once
 *   at error; with the plugin, fields held one by one (inside lists) still charge;
 * - a `caller(ctx)` (or another context reader) that throws is the host's bug, not bad credentials:
 *   500 INTERNAL_SERVER_ERROR, masked with a requestId, the error logged; UnauthenticatedError and
 *   "no caller" stay 401;
 * - a malformed request body ({"query": 5}) is 400 BAD_USER_INPUT without a stack, as DESIGN.md's
 *   closed code set says, even where Apollo would add stack traces (outside production).
 */
import { ApolloServer, HeaderMap } from "@apollo/server";
import { sql } from "drizzle-orm";
import { buildSchema } from "graphql";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../../src/db/database.js";
import { createCredits, UnauthenticatedError, type CreditsOptions } from "../../src/library/index.js";
import { createLogger } from "../../src/observability/logger.js";
import { createPgliteDatabase, type TestDatabase } from "../helpers/databases.js";
import { captureLogLines } from "../helpers/log-lines.js";

interface Ctx {
  user?: string;
  sub?: string;
}

interface Answer {
  status: number;
  data?: Record<string, unknown> | null;
  errors?: { message: string; extensions: Record<string, any> }[];
  extensions?: { credits?: any };
}

const SDL = (typeDefs: string) => `${typeDefs}
  type Item { name: String!, price(subscriptionId: ID): Int @credits(type: "calls", amount: 1) }
  type Query { hello: String, items(subscriptionId: ID!): [Item!]! }
  type Mutation { work(subscriptionId: ID!, n: Int!): Int! @credits(type: "calls", amount: 2) }`;
const RESOLVERS = {
  Query: { hello: () => "hi", items: () => [{ name: "a" }, { name: "b" }] },
  Mutation: { work: (_: unknown, { n }: { n: number }) => n },
  Item: { price: () => 7 },
};
const caller = (ctx: Ctx) => (ctx.user ? { id: ctx.user, isAdmin: false } : undefined);
const MASKED = /^Internal server error: the request failed on our side/;

let database: TestDatabase;
beforeAll(async () => {
  database = await createPgliteDatabase();
}, 120_000);
afterAll(async () => {
  await database?.dispose();
});

/** A host on the shared database; `plugins` are the Apollo Server's (the credits plugin unless told otherwise). */
async function host(options: Partial<CreditsOptions<Ctx>> = {}, withPlugin = true) {
  const log = captureLogLines();
  const credits = await createCredits<Ctx>({
    database,
    creditTypes: ["calls"],
    caller,
    recovery: false,
    rateLimit: false,
    logger: createLogger("info", log.destination),
    ...options,
  });
  const schema = credits.transform(buildSchema(SDL(credits.typeDefs)), RESOLVERS);
  // nodeEnv "development": Apollo would put stack traces in error responses.
  const server = new ApolloServer<Ctx>({ schema, plugins: withPlugin ? [credits.plugin] : [], nodeEnv: "development" });
  await server.start();
  const sub = (await credits.admin.createSubscription({ ownerId: "ann", initialCredits: { calls: 20 } })).id;
  async function run(query: string, context: Ctx = { user: "ann" }): Promise<Answer> {
    const response = await server.executeOperation({ query }, { contextValue: context });
    if (response.body.kind !== "single") throw new Error("expected a single result");
    return { status: response.http.status ?? 200, ...response.body.singleResult } as Answer;
  }
  const pendingHolds = async () =>
    (await queryRows<{ n: number }>(database.db, sql`select count(*)::int as n from pending_charges where subscription_id = ${sub}::uuid`))[0].n;
  return { credits, server, sub, run, log: log.lines, pendingHolds, stop: async () => (await server.stop(), await credits.close()) };
}

describe("an Apollo Server without credits.plugin", () => {
  it("refuses metered calls before holding anything, masked with a requestId, and logs the cause once at error", async () => {
    const h = await host({}, false);
    try {
      const first = await h.run(`mutation { work(subscriptionId: "${h.sub}", n: 1) }`);
      const second = await h.run(`{ items(subscriptionId: "${h.sub}") { name price } }`);
      for (const res of [first, second]) {
        expect(res.status).toBe(500);
        expect(res.errors![0].message).toMatch(MASKED);
        expect(res.errors![0].extensions).toMatchObject({ code: "INTERNAL_SERVER_ERROR", requestId: expect.any(String) });
        expect(JSON.stringify(res.errors)).not.toMatch(/stacktrace|credits\.plugin/);
      }
      // Nothing held: the balance is whole, no hold waits for a settlement that would never come.
      expect(await h.credits.admin.balances(h.sub)).toEqual({ calls: 20 });
      expect(await h.pendingHolds()).toBe(0);
      const told = h.log.filter((l) => l.level === 50);
      expect(told).toHaveLength(1);
      expect(told[0].msg).toBe("credits.plugin is not installed on this Apollo Server: add plugins: [credits.plugin]");
      // Unmetered fields are not the plugin's business.
      expect((await h.run(`{ hello }`)).data).toEqual({ hello: "hi" });
    } finally {
      await h.stop();
    }
  }, 120_000);

  it("with the plugin, charges fields held one by one inside lists, and settles them", async () => {
    const h = await host({ subscription: (ctx: Ctx) => ctx.sub });
    try {
      // The items carry no subscriptionId: the metered field charges the one the context names.
      const named = await h.run(`{ items(subscriptionId: "${h.sub}") { name price } }`, { user: "ann", sub: h.sub });
      expect(named.errors).toBeUndefined();
      expect(named.data).toEqual({ items: [{ name: "a", price: 7 }, { name: "b", price: 7 }] });
      expect(named.extensions!.credits.charges).toHaveLength(2);
      // A list index is a number, as in an error's path: a client matches a charge to its item as it is.
      expect(named.extensions!.credits.charges.map((c: { path: unknown[] }) => c.path)).toEqual([
        ["items", 0, "price"],
        ["items", 1, "price"],
      ]);
      expect(await h.credits.admin.balances(h.sub)).toEqual({ calls: 18 });
      expect(await h.pendingHolds()).toBe(0);
    } finally {
      await h.stop();
    }
  }, 120_000);
});

describe("a context reader of the host that throws", () => {
  it("answers a throwing caller(ctx) 500 INTERNAL_SERVER_ERROR, masked with a requestId, and logs the host's error", async () => {
    const h = await host({
      caller: (ctx: Ctx) => {
        if (ctx.user === "expired") throw new UnauthenticatedError("Your session expired: sign in again");
        return { id: (ctx as any).auth.user.id, isAdmin: false };
      },
    });
    try {
      const res = await h.run(`mutation { work(subscriptionId: "${h.sub}", n: 1) }`);
      expect(res.status).toBe(500);
      expect(res.errors![0].message).toMatch(MASKED);
      expect(res.errors![0].extensions).toMatchObject({ code: "INTERNAL_SERVER_ERROR", requestId: expect.any(String) });
      expect(JSON.stringify(res.errors)).not.toMatch(/stacktrace|auth|TypeError/);
      const logged = h.log.find((l) => l.level === 50 && /caller\(ctx\)/.test(l.msg));
      expect(logged).toMatchObject({ requestId: res.errors![0].extensions.requestId, err: { type: "TypeError", message: expect.stringMatching(/reading 'user'/) } });
      expect(await h.credits.admin.balances(h.sub)).toEqual({ calls: 20 });
      // The host's own UnauthenticatedError is still a 401 in its words.
      const expired = await h.run(`mutation { work(subscriptionId: "${h.sub}", n: 1) }`, { user: "expired" });
      expect(expired.status).toBe(401);
      expect(expired.errors![0]).toMatchObject({ message: "Your session expired: sign in again", extensions: { code: "UNAUTHENTICATED" } });
    } finally {
      await h.stop();
    }
  }, 120_000);

  it("keeps 401 for a caller(ctx) that finds no one", async () => {
    const h = await host();
    try {
      const res = await h.run(`mutation { work(subscriptionId: "${h.sub}", n: 1) }`, {});
      expect(res.status).toBe(401);
      expect(res.errors![0].extensions.code).toBe("UNAUTHENTICATED");
      expect(h.log.filter((l) => l.level >= 50)).toEqual([]);
    } finally {
      await h.stop();
    }
  }, 120_000);

  it("answers a throwing subscription(ctx) or requestId(ctx) the same way, and charges nothing", async () => {
    const h = await host({
      subscription: (ctx: Ctx) => {
        if (ctx.user === "ann") throw new Error("no tenant header");
        return undefined;
      },
      requestId: (ctx: Ctx) => (ctx.user === "ids" ? (undefined as any).id : undefined),
    });
    try {
      for (const context of [{ user: "ann" }, { user: "ids" }]) {
        const res = await h.run(`mutation { work(subscriptionId: "${h.sub}", n: 1) }`, context);
        expect(res.status).toBe(500);
        expect(res.errors![0].extensions).toMatchObject({ code: "INTERNAL_SERVER_ERROR", requestId: expect.any(String) });
      }
      expect(h.log.filter((l) => l.level === 50).map((l) => l.msg)).toEqual([
        expect.stringMatching(/subscription\(ctx\) threw/),
        expect.stringMatching(/requestId\(ctx\) threw/),
      ]);
      expect(await h.credits.admin.balances(h.sub)).toEqual({ calls: 20 });
    } finally {
      await h.stop();
    }
  }, 120_000);
});

describe("a malformed request body", () => {
  it("is 400 BAD_USER_INPUT without a stack trace, outside production too", async () => {
    const h = await host();
    try {
      for (const body of [{ query: 5 }, { query: "{ hello }", variables: 7 }, {}, [{ query: "{ hello }" }]]) {
        const response = await h.server.executeHTTPGraphQLRequest({
          httpGraphQLRequest: { method: "POST", headers: new HeaderMap([["content-type", "application/json"]]), search: "", body },
          context: async () => ({ user: "ann" }),
        });
        expect(response.status).toBe(400);
        if (response.body.kind !== "complete") throw new Error("expected a complete body");
        const { errors } = JSON.parse(response.body.string) as Answer;
        expect(errors).toHaveLength(1);
        expect(errors![0].extensions).toEqual({ code: "BAD_USER_INPUT", reason: "BAD_REQUEST" });
      }
      // Said as the server says it.
      const batch = await h.server.executeHTTPGraphQLRequest({
        httpGraphQLRequest: { method: "POST", headers: new HeaderMap([["content-type", "application/json"]]), search: "", body: [{ query: "{ hello }" }] },
        context: async () => ({}),
      });
      if (batch.body.kind !== "complete") throw new Error("expected a complete body");
      expect(JSON.parse(batch.body.string).errors[0].message).toMatch(/^Batched requests are not accepted/);
    } finally {
      await h.stop();
    }
  }, 120_000);
});
