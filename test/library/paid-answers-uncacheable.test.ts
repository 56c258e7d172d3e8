/**
 * A paid answer is never cacheable (an outside audit of library hosts): with a host's cache hints (a
 * defaultMaxAge, a PUBLIC scope), a metered call was answered `cache-control: max-age=60, public`, so
 * a shared cache could give one customer's paid answer to another, and Apollo's response cache could
 * answer the next caller without running or charging. A metered field makes the response no-store.
 */
import { ApolloServer } from "@apollo/server";
import { ApolloServerPluginCacheControl } from "@apollo/server/plugin/cacheControl";
import { buildSchema } from "graphql";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCredits } from "../../src/library/index.js";
import { createLogger } from "../../src/observability/logger.js";
import { createPgliteDatabase, type TestDatabase } from "../helpers/databases.js";

interface Ctx {
  user: string;
}

let database: TestDatabase;
beforeAll(async () => {
  database = await createPgliteDatabase();
}, 120_000);
afterAll(async () => {
  await database?.dispose();
});

describe("a host with cache hints", () => {
  it("answers a metered field no-store, whatever the hints; unmetered answers keep them", async () => {
    const credits = await createCredits<Ctx>({
      database,
      creditTypes: ["calls"],
      caller: (ctx) => ({ id: ctx.user, isAdmin: false }),
      recovery: false,
      rateLimit: false,
      logger: createLogger("silent"),
    });
    const schema = credits.transform(
      buildSchema(`${credits.typeDefs}
        type Query { hello: String, report(subscriptionId: ID!): String @credits(type: "calls", amount: 2) }`),
      { Query: { hello: () => "hi", report: () => "paid" } },
    );
    const server = new ApolloServer<Ctx>({ schema, plugins: [ApolloServerPluginCacheControl({ defaultMaxAge: 60 }), credits.plugin] });
    await server.start();
    try {
      const sub = (await credits.admin.createSubscription({ ownerId: "ann", initialCredits: { calls: 10 } })).id;
      const run = async (query: string) => {
        const response = await server.executeOperation({ query }, { contextValue: { user: "ann" } });
        if (response.body.kind !== "single") throw new Error("expected a single result");
        return { cacheControl: response.http.headers.get("cache-control"), result: response.body.singleResult };
      };

      const free = await run("{ hello }");
      expect(free.cacheControl).toBe("max-age=60, public");

      for (const query of [`{ report(subscriptionId: "${sub}") }`, `{ hello report(subscriptionId: "${sub}") }`]) {
        const paid = await run(query);
        expect(paid.result.errors).toBeUndefined();
        expect(paid.result.data?.report).toBe("paid");
        expect(paid.cacheControl).toBe("no-store");
      }
      expect(await credits.admin.balances(sub)).toEqual({ calls: 6 });
    } finally {
      await server.stop();
      await credits.close();
    }
  }, 120_000);
});
