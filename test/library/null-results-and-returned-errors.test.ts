/**
 * What a metered call costs when its resolver answers null, or answers with an error it returns
 * rather than throws (DESIGN.md, "The charge path", step 8; two findings of an outside audit):
 * - a null (or undefined, or no resolver at all) is the call's result: it reaches the client as null
 *   and is charged like "" or 0. It used to be refunded as "result not delivered", the delivery check
 *   taking any null in the response for one nulled by an error;
 * - only error propagation takes a result out of the response: a sibling's error through non-null
 *   parents (data: null), an error nulling the list item or the nullable parent the field sits in, a
 *   descendant's error nulling the field's own place; and a client that went away. Those stay refunded;
 * - graphql-js takes a returned Error for that error thrown, and so does the charge: a returned
 *   BAD_USER_INPUT keeps the hold as its cost (it used to be refunded), a returned Error is a system
 *   error, refunded.
 */
import { ApolloServer } from "@apollo/server";
import { sql } from "drizzle-orm";
import { buildSchema, GraphQLError } from "graphql";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../../src/db/database.js";
import { createCredits, type Credits } from "../../src/library/index.js";
import { createLogger } from "../../src/observability/logger.js";
import { createPgliteDatabase, type TestDatabase } from "../helpers/databases.js";
import { captureLogLines } from "../helpers/log-lines.js";

interface Ctx {
  user?: string;
  gone?: boolean;
}

interface Charge {
  path: (string | number)[];
  charged: number;
  refunded: number;
  cost: number;
  entryId: string;
}

interface Answer {
  data?: Record<string, unknown> | null;
  errors?: { message: string; path?: (string | number)[]; extensions: Record<string, any> }[];
  extensions?: { credits?: { charges: Charge[] } };
}

const SDL = (typeDefs: string) => `${typeDefs}
  type Report { total: Int, label: String! }
  type Item { name: String!, price(subscriptionId: ID!): Int @credits(type: "calls", amount: 1), tag: String! }
  type Box { m(subscriptionId: ID!): String @credits(type: "calls", amount: 1), bad: String! }
  type Query {
    m(subscriptionId: ID!, how: String!): String @credits(type: "calls", amount: 2)
    report(subscriptionId: ID!, how: String!): Report @credits(type: "calls", amount: 2)
    bare(subscriptionId: ID!): String @credits(type: "calls", amount: 2)
    items: [Item]!
    box(how: String!): Box
    boom: String!
  }`;

/** What `m` answers for each `how`: null in its two spellings, falsy values, and errors returned or thrown. */
const ANSWERS: Record<string, () => unknown> = {
  null: () => null,
  undefined: () => undefined,
  empty: () => "",
  value: () => "v",
  "return-user-error": () => new GraphQLError("bad", { extensions: { code: "BAD_USER_INPUT" } }),
  "throw-user-error": () => {
    throw new GraphQLError("bad", { extensions: { code: "BAD_USER_INPUT" } });
  },
  "return-error": () => new Error("the provider failed"),
  "throw-error": () => {
    throw new Error("the provider failed");
  },
};

const RESOLVERS = {
  Query: {
    m: (_: unknown, { how }: { how: string }) => ANSWERS[how](),
    // "label-missing": a value whose non-null child is null, so graphql-js's error nulls `report` itself.
    report: (_: unknown, { how }: { how: string }) => (how === "null" ? null : { total: 1, label: how === "label-missing" ? null : "ok" }),
    // `bare` has no resolver: the default one answers undefined.
    items: () => [
      { name: "a", tag: "t" },
      { name: "b", tag: null },
    ],
    box: (_: unknown, { how }: { how: string }) => {
      if (how === "throw") throw new Error("no box");
      return { bad: how === "bad-child" ? null : "fine" };
    },
    boom: () => {
      throw new Error("sibling failed");
    },
  },
  Item: { price: () => 7 },
  Box: { m: () => "inside" },
};

let database: TestDatabase;
let credits: Credits<Ctx>;
let server: ApolloServer<Ctx>;

beforeAll(async () => {
  database = await createPgliteDatabase();
  credits = await createCredits<Ctx>({
    database,
    creditTypes: ["calls"],
    caller: (ctx) => (ctx.user ? { id: ctx.user, isAdmin: false } : undefined),
    clientGone: (ctx) => ctx.gone === true,
    recovery: false,
    rateLimit: false,
    logger: createLogger("info", captureLogLines().destination),
  });
  const schema = credits.transform(buildSchema(SDL(credits.typeDefs)), RESOLVERS);
  server = new ApolloServer<Ctx>({ schema, plugins: [credits.plugin] });
  await server.start();
}, 120_000);
afterAll(async () => {
  await server?.stop();
  await credits?.close();
  await database?.dispose();
});

async function subscription(): Promise<string> {
  return (await credits.admin.createSubscription({ ownerId: "ann", initialCredits: { calls: 20 } })).id;
}

async function run(query: string, context: Ctx = { user: "ann" }): Promise<Answer> {
  const response = await server.executeOperation({ query }, { contextValue: context });
  if (response.body.kind !== "single") throw new Error("expected a single result");
  return response.body.singleResult as Answer;
}

/** The refund reasons the ledger holds for a charge (none when its cost stood). */
async function refundReasons(charge: Charge): Promise<string[]> {
  const rows = await queryRows<{ reason: string }>(
    database.db,
    sql`select reason from credit_ledger where refund_of = ${charge.entryId}::uuid and kind = 'REFUND' order by seq`,
  );
  return rows.map((r) => r.reason);
}

/** The charge extensions.credits reports at `path`. */
function chargeAt(answer: Answer, path: (string | number)[]): Charge {
  const charge = answer.extensions?.credits?.charges.find((c) => JSON.stringify(c.path) === JSON.stringify(path));
  if (!charge) throw new Error(`no charge at ${path.join(".")}: ${JSON.stringify(answer.extensions)}`);
  return charge;
}

describe("a null the resolver returned", () => {
  it.each(["null", "undefined", "empty"])("of a nullable metered field (%s) reaches the client and is charged", async (how) => {
    const sub = await subscription();
    const res = await run(`{ m(subscriptionId: "${sub}", how: "${how}") }`);
    expect(res.errors).toBeUndefined();
    expect(res.data).toEqual({ m: how === "empty" ? "" : null });
    const charge = chargeAt(res, ["m"]);
    expect(charge).toMatchObject({ charged: 2, refunded: 0, cost: 2 });
    expect(await refundReasons(charge)).toEqual([]);
    expect(await credits.admin.balances(sub)).toEqual({ calls: 18 });
  });

  it("of a metered field without a resolver, or of an object type, is charged too", async () => {
    const sub = await subscription();
    const res = await run(`{ bare(subscriptionId: "${sub}") report(subscriptionId: "${sub}", how: "null") { total } }`);
    expect(res.errors).toBeUndefined();
    expect(res.data).toEqual({ bare: null, report: null });
    for (const path of [["bare"], ["report"]]) {
      const charge = chargeAt(res, path);
      expect(charge).toMatchObject({ charged: 2, refunded: 0, cost: 2 });
      expect(await refundReasons(charge)).toEqual([]);
    }
    expect(await credits.admin.balances(sub)).toEqual({ calls: 16 });
  });

  it("is still refunded when the client went away", async () => {
    const sub = await subscription();
    const res = await run(`{ m(subscriptionId: "${sub}", how: "null") }`, { user: "ann", gone: true });
    const charge = chargeAt(res, ["m"]);
    expect(charge).toMatchObject({ charged: 2, refunded: 2, cost: 0 });
    expect(await refundReasons(charge)).toEqual(["result not delivered"]);
    expect(await credits.admin.balances(sub)).toEqual({ calls: 20 });
  });
});

describe("a result error propagation took out of the response", () => {
  it("is refunded when a sibling's error nulls the whole data through a non-null parent", async () => {
    const sub = await subscription();
    const res = await run(`{ m(subscriptionId: "${sub}", how: "value") boom }`);
    expect(res.data).toBeNull();
    const charge = chargeAt(res, ["m"]);
    expect(charge).toMatchObject({ charged: 2, refunded: 2, cost: 0 });
    expect(await refundReasons(charge)).toEqual(["result not delivered"]);
  });

  it("is refunded when its own place is nulled by a descendant's error, and charged when its null was its own", async () => {
    const sub = await subscription();
    const res = await run(`{ report(subscriptionId: "${sub}", how: "label-missing") { total label } }`);
    expect(res.data).toEqual({ report: null });
    expect(res.errors?.[0].path).toEqual(["report", "label"]);
    const charge = chargeAt(res, ["report"]);
    expect(charge).toMatchObject({ charged: 2, refunded: 2, cost: 0 });
    expect(await refundReasons(charge)).toEqual(["result not delivered"]);
  });

  it("is refunded for the list item an error nulled, and charged for the item that arrived", async () => {
    const sub = await subscription();
    const res = await run(`{ items { name price(subscriptionId: "${sub}") tag } }`);
    expect(res.data).toEqual({ items: [{ name: "a", price: 7, tag: "t" }, null] });
    expect(chargeAt(res, ["items", 0, "price"])).toMatchObject({ charged: 1, refunded: 0, cost: 1 });
    const lost = chargeAt(res, ["items", 1, "price"]);
    expect(lost).toMatchObject({ charged: 1, refunded: 1, cost: 0 });
    expect(await refundReasons(lost)).toEqual(["result not delivered"]);
    expect(await credits.admin.balances(sub)).toEqual({ calls: 19 });
  });

  it("is refunded when the nullable parent it sits in is nulled, by a child's error or its own", async () => {
    const sub = await subscription();
    const byChild = await run(`{ box(how: "bad-child") { m(subscriptionId: "${sub}") bad } }`);
    expect(byChild.data).toEqual({ box: null });
    const child = chargeAt(byChild, ["box", "m"]);
    expect(child).toMatchObject({ charged: 1, refunded: 1, cost: 0 });
    expect(await refundReasons(child)).toEqual(["result not delivered"]);
    const byItself = await run(`{ box(how: "throw") { m(subscriptionId: "${sub}") } }`);
    expect(byItself.data).toEqual({ box: null });
    expect(chargeAt(byItself, ["box", "m"])).toMatchObject({ charged: 1, refunded: 1, cost: 0 });
    expect(await credits.admin.balances(sub)).toEqual({ calls: 20 });
  });
});

describe("an error the resolver returns instead of throwing", () => {
  it.each([
    ["a user-input error", "user-error", { refunded: 0, cost: 2 }, []],
    ["a system error", "error", { refunded: 2, cost: 0 }, ["system error"]],
  ] as const)("costs what %s thrown costs", async (_, kind, settled, reasons) => {
    const sub = await subscription();
    const returned = await run(`{ m(subscriptionId: "${sub}", how: "return-${kind}") }`);
    const thrown = await run(`{ m(subscriptionId: "${sub}", how: "throw-${kind}") }`);
    for (const res of [returned, thrown]) {
      expect(res.data).toEqual({ m: null });
      expect(res.errors).toHaveLength(1);
      const charge = chargeAt(res, ["m"]);
      expect(charge).toMatchObject({ charged: 2, ...settled });
      expect(await refundReasons(charge)).toEqual(reasons);
    }
    expect(returned.errors![0].extensions.code).toBe(thrown.errors![0].extensions.code);
    expect(await credits.admin.balances(sub)).toEqual({ calls: 20 - 2 * settled.cost });
  });
});
