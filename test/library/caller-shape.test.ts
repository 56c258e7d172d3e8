/**
 * What a host's caller(ctx) returns is checked before anything is spent with it (docs/library.md:
 * `{ id, isAdmin }` or undefined). An outside audit's JavaScript hosts returned `{ isAdmin: true }`
 * (spent as an admin, the ledger's actor_id NULL), `{ id: "bob", isAdmin: 1 }` (spent someone else's
 * subscription as an admin) and `{ id: "bob", isAdmin: [] }` (reached SQL: a 500 logged as a database
 * failure). Any answer of another shape is the host's bug, as a throwing caller is: 500
 * INTERNAL_SERVER_ERROR, masked with a requestId, nothing charged, and one error line naming
 * caller(ctx) and what was wrong.
 */
import { ApolloServer } from "@apollo/server";
import { sql } from "drizzle-orm";
import { buildSchema } from "graphql";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../../src/db/database.js";
import { createCredits, type Credits } from "../../src/library/index.js";
import { createLogger } from "../../src/observability/logger.js";
import { createPgliteDatabase, type TestDatabase } from "../helpers/databases.js";
import { captureLogLines } from "../helpers/log-lines.js";

/** The host's context carries what its caller(ctx) answers, as it is. */
interface Ctx {
  answer?: unknown;
}

interface Answer {
  status: number;
  data?: Record<string, unknown> | null;
  errors?: { message: string; extensions: Record<string, any> }[];
}

const SDL = (typeDefs: string) => `${typeDefs}
  type Query { hello: String }
  type Mutation { work(subscriptionId: ID!): Int! @credits(type: "calls", amount: 2) }`;
const MASKED = /^Internal server error: the request failed on our side/;

let database: TestDatabase;
let credits: Credits<Ctx>;
let server: ApolloServer<Ctx>;
let log: Record<string, any>[];
let sub: string;

beforeAll(async () => {
  database = await createPgliteDatabase();
  const captured = captureLogLines();
  log = captured.lines;
  credits = await createCredits<Ctx>({
    database,
    creditTypes: ["calls"],
    // A JavaScript host: nothing checks the shape of what it returns.
    caller: (ctx) => ctx.answer as any,
    recovery: false,
    rateLimit: false,
    logger: createLogger("info", captured.destination),
  });
  const schema = credits.transform(buildSchema(SDL(credits.typeDefs)), { Mutation: { work: () => 1 } });
  server = new ApolloServer<Ctx>({ schema, plugins: [credits.plugin], nodeEnv: "development" });
  await server.start();
  sub = (await credits.admin.createSubscription({ ownerId: "ann", initialCredits: { calls: 20 } })).id;
}, 120_000);
afterAll(async () => {
  await server?.stop();
  await credits?.close();
  await database?.dispose();
});

async function work(answer: unknown): Promise<Answer> {
  const response = await server.executeOperation({ query: `mutation { work(subscriptionId: "${sub}") }` }, { contextValue: { answer } });
  if (response.body.kind !== "single") throw new Error("expected a single result");
  return { status: response.http.status ?? 200, ...response.body.singleResult } as Answer;
}

const ledgerRows = async () => (await queryRows<{ n: number }>(database.db, sql`select count(*)::int as n from credit_ledger`))[0].n;

describe("a caller(ctx) answer that is not { id, isAdmin } or undefined", () => {
  const cases: [string, unknown, RegExp][] = [
    ["no id (an admin)", { isAdmin: true }, /caller\(ctx\) returned an id that is not a non-empty string: the id is missing/],
    ["a truthy isAdmin", { id: "bob", isAdmin: 1 }, /caller\(ctx\) returned a caller whose isAdmin is 1 \(a number\): isAdmin must be true or false/],
    ["an array for isAdmin", { id: "bob", isAdmin: [] }, /caller\(ctx\) returned a caller whose isAdmin is an array: isAdmin must be true or false/],
    ["a string for isAdmin", { id: "ann", isAdmin: "false" }, /isAdmin is "false" \(a string\): isAdmin must be true or false/],
    ["an empty id", { id: "", isAdmin: false }, /caller\(ctx\) returned an id that is not a non-empty string: the id is "" \(a string\)/],
    ["a number for id", { id: 7, isAdmin: false }, /caller\(ctx\) returned an id that is not a non-empty string: the id is 7 \(a number\)/],
    ["an id padded with white space", { id: " ann ", isAdmin: false }, /caller\(ctx\) returned an id that must not start or end with white space/],
    ["the id alone", "ann", /caller\(ctx\) returned "ann" \(a string\): return \{ id, isAdmin \} or undefined/],
  ];
  for (const [what, answer, logged] of cases) {
    it(`answers ${what} 500, masked with a requestId, charges nothing and logs it once at error`, async () => {
      const before = { lines: log.length, ledger: await ledgerRows() };
      const res = await work(answer);
      expect(res.status).toBe(500);
      expect(res.data).toBeNull();
      expect(res.errors![0].message).toMatch(MASKED);
      expect(res.errors![0].extensions).toMatchObject({ code: "INTERNAL_SERVER_ERROR", requestId: expect.any(String) });
      expect(JSON.stringify(res.errors)).not.toMatch(/stacktrace|caller|isAdmin|select|insert/i);
      // Never spent: no hold, no ledger entry (an admin's with actor_id NULL, another's subscription).
      expect(await credits.admin.balances(sub)).toEqual({ calls: 20 });
      expect(await ledgerRows()).toBe(before.ledger);
      const errors = log.slice(before.lines).filter((l) => l.level >= 50);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatchObject({ requestId: res.errors![0].extensions.requestId, msg: expect.stringMatching(logged) });
      expect(errors[0].msg).toMatch(/a bug in the caller option given to createCredits/);
    }, 60_000);
  }
});

describe("a caller(ctx) answer of the documented shape", () => {
  it("is taken: the owner pays, an admin's extra fields are left aside, undefined or null is no one (401)", async () => {
    const before = log.length;
    const { calls } = await credits.admin.balances(sub);
    const owner = await work({ id: "ann", isAdmin: false });
    expect(owner.errors).toBeUndefined();
    expect(owner.data).toEqual({ work: 1 });
    const admin = await work({ id: "root", isAdmin: true, email: "root@example.com" });
    expect(admin.errors).toBeUndefined();
    expect(await credits.admin.balances(sub)).toEqual({ calls: calls - 4 });
    // isAdmin left out is false: the owner still pays, a stranger is no admin.
    expect((await work({ id: "ann" })).errors).toBeUndefined();
    expect((await work({ id: "stranger" })).errors?.[0].extensions.code).toBe("FORBIDDEN");
    expect(await credits.admin.balances(sub)).toEqual({ calls: calls - 6 });
    for (const anonymous of [undefined, null]) {
      const res = await work(anonymous);
      expect(res.status).toBe(401);
      expect(res.errors![0].extensions.code).toBe("UNAUTHENTICATED");
    }
    expect(log.slice(before).filter((l) => l.level >= 50)).toEqual([]);
  }, 60_000);
});
