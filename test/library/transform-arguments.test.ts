/**
 * transform checks the arguments the charge path reads, naming the field:
 * - `subscriptionId` must be an ID: `ID!`, or `ID` (a null one charges the subscription
 *   `subscription(ctx)` names, else is refused 400 BAD_USER_INPUT); a String, an Int or a list is refused;
 * - a `creditAmount` the host declares must be the optional `Int` transform would add: any other type
 *   (a String a non-admin's "3" would be refused for as 400 BAD_USER_INPUT instead of 403 FORBIDDEN),
 *   `Int!` or a default value (every non-admin call refused) is refused.
 * A non-admin who passes creditAmount is then always 403 FORBIDDEN, whether transform added it or the
 * host declared it.
 */
import { ApolloServer } from "@apollo/server";
import { buildSchema } from "graphql";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCredits, type Credits } from "../../src/library/index.js";
import { createLogger } from "../../src/observability/logger.js";
import { createPgliteDatabase, type TestDatabase } from "../helpers/databases.js";

interface Ctx {
  user?: string;
  sub?: string;
}

let database: TestDatabase;
let plain: Credits<Ctx>;
let fromContext: Credits<Ctx>;
beforeAll(async () => {
  database = await createPgliteDatabase();
  const options = {
    database,
    creditTypes: ["ai"],
    caller: (ctx: Ctx) => (ctx.user ? { id: ctx.user, isAdmin: ctx.user === "root" } : undefined),
    recovery: false as const,
    rateLimit: false as const,
    logger: createLogger("silent"),
  };
  plain = await createCredits<Ctx>(options);
  fromContext = await createCredits<Ctx>({ ...options, subscription: (ctx) => ctx.sub });
}, 120_000);
afterAll(async () => {
  await plain?.close();
  await fromContext?.close();
  await database?.dispose();
});

const schemaWith = (credits: Credits<Ctx>, field: string) =>
  buildSchema(`${credits.typeDefs}
    type Query { hello: String }
    type Mutation { ${field} }`);
const transformed = (credits: Credits<Ctx>, field: string) => () => credits.transform(schemaWith(credits, field), { Mutation: { x: () => "done" } });

describe("transform and the subscriptionId argument", () => {
  it("refuses one that is not an ID, naming the field and the type it has", () => {
    for (const credits of [plain, fromContext]) {
      for (const type of ["String", "String!", "Int!", "[ID!]", "[ID!]!"]) {
        expect(transformed(credits, `x(subscriptionId: ${type}): String @credits(type: "ai", amount: 1)`)).toThrow(
          new RegExp(`Mutation\\.x: .*subscriptionId argument of type ID! \\(or ID\\).*it has one of type ${type.replace(/[[\]!]/g, "\\$&")}`),
        );
      }
    }
  });

  it("takes ID! and ID", () => {
    for (const credits of [plain, fromContext]) {
      expect(transformed(credits, `x(subscriptionId: ID!): String @credits(type: "ai", amount: 1)`)).not.toThrow();
      expect(transformed(credits, `x(subscriptionId: ID): String @credits(type: "ai", amount: 1)`)).not.toThrow();
    }
  });
});

describe("transform and a creditAmount the host declares", () => {
  it("refuses one that is not the optional Int, naming the field", () => {
    for (const type of ["String", "Float", "ID", "[Int]", "Int!", "Int = 0"]) {
      expect(transformed(plain, `x(subscriptionId: ID!, creditAmount: ${type}): String @credits(type: "ai", amount: 1)`)).toThrow(
        /Mutation\.x: .*creditAmount.*Int/,
      );
    }
  });

  it("answers 403 FORBIDDEN to a non-admin who passes a declared creditAmount: Int, and lets an admin set the price", async () => {
    const schema = plain.transform(schemaWith(plain, `x(subscriptionId: ID!, creditAmount: Int): String @credits(type: "ai", amount: 2)`), {
      Mutation: { x: () => "done" },
    });
    const server = new ApolloServer<Ctx>({ schema, plugins: [plain.plugin] });
    await server.start();
    try {
      const sub = (await plain.admin.createSubscription({ ownerId: "ann", initialCredits: { ai: 10 } })).id;
      const run = async (user: string) => {
        const response = await server.executeOperation({ query: `mutation { x(subscriptionId: "${sub}", creditAmount: 3) }` }, { contextValue: { user } });
        if (response.body.kind !== "single") throw new Error("expected a single result");
        return { status: response.http.status ?? 200, ...response.body.singleResult };
      };
      const ann = await run("ann");
      expect(ann.status).toBe(403);
      expect(ann.errors![0].extensions).toMatchObject({ code: "FORBIDDEN" });
      expect(await plain.admin.balances(sub)).toEqual({ ai: 10 });
      const root = await run("root");
      expect(root.errors).toBeUndefined();
      expect(await plain.admin.balances(sub)).toEqual({ ai: 7 });
    } finally {
      await server.stop();
    }
  }, 60_000);
});
