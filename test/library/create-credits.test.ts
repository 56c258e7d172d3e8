/**
 * createCredits in process, on PGlite and PostgreSQL: an SDL host whose context knows nothing of the
 * credits core (a user name and a subscription id), with its own credit type, estimator and meter.
 * The pack-and-install test proves the published package; this one covers the options one by one.
 */
import { ApolloServer } from "@apollo/server";
import { buildSchema } from "graphql";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCredits, UnauthenticatedError, type Credits } from "../../src/library/index.js";
import { sql } from "drizzle-orm";
import { queryRows } from "../../src/db/database.js";
import { createLogger } from "../../src/observability/logger.js";
import { createCreditMetrics } from "../../src/observability/metrics.js";
import { metricsObserver } from "../../src/observability/metrics-observer.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { captureLogLines } from "../helpers/log-lines.js";

interface HostContext {
  user?: string;
  sub?: string;
  badToken?: boolean;
}

const SDL = (directive: string) => `
  ${directive}
  type Query { lookup: Int @credits(type: "calls", amount: 1) }
  type Mutation {
    work(subscriptionId: ID!, n: Int!): [Int!]! @credits(type: "calls", estimator: "perItem", meter: "items")
    boom(subscriptionId: ID!): Int @credits(type: "calls", amount: 2)
  }`;

const resolvers = {
  Query: { lookup: () => 42 },
  Mutation: {
    work: (_: unknown, { n }: { n: number }) => Array.from({ length: Math.min(n, 3) }, (_, i) => i),
    boom: () => {
      throw new Error('relation "secret_table" does not exist');
    },
  },
};

describe.each(BACKENDS)("createCredits on %s", (backend) => {
  let database: TestDatabase;
  let credits: Credits<HostContext>;
  let server: ApolloServer<HostContext>;
  let sub: string;

  async function run(query: string, context: HostContext) {
    const response = await server.executeOperation({ query }, { contextValue: context });
    if (response.body.kind !== "single") throw new Error("expected a single result");
    return { status: response.http.status ?? 200, ...response.body.singleResult } as {
      status: number;
      data?: Record<string, unknown> | null;
      errors?: { message: string; extensions: Record<string, unknown> }[];
      extensions?: { credits?: any };
    };
  }

  beforeAll(async () => {
    database = await createTestDatabase(backend);
    credits = await createCredits<HostContext>({
      // PostgreSQL by URL (opened and migrated by createCredits), PGlite as an open handle migrated again.
      database: backend === "postgres" ? database.url! : database,
      migrate: true,
      creditTypes: [{ name: "calls", description: "API calls" }],
      estimators: { perItem: ({ n }: { n: number }) => n },
      meters: { items: (_args: unknown, result: unknown[]) => result.length },
      caller: (ctx) => {
        // Bad credentials: the package's UnauthenticatedError (any other throw is a bug of the host: 500).
        if (ctx.badToken) throw new UnauthenticatedError("token expired");
        return ctx.user ? { id: ctx.user, isAdmin: ctx.user === "root" } : undefined;
      },
      subscription: (ctx) => ctx.sub,
      rateLimit: { default: "5/1m" },
      recovery: false,
      // The masked errors these cases provoke are logged on purpose (library-defaults.test.ts checks that).
      logger: createLogger("silent"),
    });
    server = new ApolloServer<HostContext>({ schema: credits.transform(buildSchema(SDL(credits.typeDefs)), resolvers), plugins: [credits.plugin] });
    sub = (await credits.admin.createSubscription({ ownerId: "ann", initialCredits: { calls: 10 } })).id;
  });
  afterAll(async () => {
    await server?.stop();
    await credits?.close();
    await database?.dispose();
  });

  it("holds the estimate, settles at the meter's count and releases the rest", async () => {
    const res = await run(`mutation { work(subscriptionId: "${sub}", n: 5) }`, { user: "ann" });
    expect(res.status).toBe(200);
    expect(res.data).toEqual({ work: [0, 1, 2] });
    expect(res.extensions!.credits.charges[0]).toMatchObject({ operation: "Mutation.work", type: "calls", estimated: 5, charged: 5, actual: 3, released: 2, cost: 3, remaining: 7 });
    expect(await credits.admin.balances(sub)).toEqual({ calls: 7 });
  });

  it("charges the subscription the host's context names when the field has no subscriptionId argument", async () => {
    const res = await run(`{ lookup }`, { user: "ann", sub });
    expect(res.data).toEqual({ lookup: 42 });
    expect(res.extensions!.credits.charges[0]).toMatchObject({ subscriptionId: sub, charged: 1, cost: 1, remaining: 6 });
  });

  it("refunds a system error whole and masks it, with the status of its code and a request id", async () => {
    const res = await run(`mutation { boom(subscriptionId: "${sub}") }`, { user: "ann" });
    expect(res.status).toBe(500);
    expect(res.errors![0].extensions.code).toBe("INTERNAL_SERVER_ERROR");
    expect(JSON.stringify(res.errors)).not.toMatch(/secret_table|stacktrace/);
    expect(typeof res.errors![0].extensions.requestId).toBe("string");
    expect(res.extensions!.credits.charges[0]).toMatchObject({ charged: 2, refunded: 2, cost: 0, remaining: 6 });
  });

  it("answers 401 without a caller or with bad credentials, 403 to a stranger, 404 to a missing subscription, 402 when short", async () => {
    const query = `mutation { work(subscriptionId: "${sub}", n: 1) }`;
    expect((await run(query, {})).status).toBe(401);
    const bad = await run(query, { badToken: true });
    expect(bad.status).toBe(401);
    expect(bad.errors![0]).toMatchObject({ message: "token expired", extensions: { code: "UNAUTHENTICATED" } });
    expect((await run(query, { user: "eve" })).errors![0].extensions.code).toBe("FORBIDDEN");
    const missing = await run(`mutation { work(subscriptionId: "00000000-0000-4000-8000-000000000000", n: 1) }`, { user: "root" });
    expect(missing.status).toBe(404);
    const short = await run(`mutation { work(subscriptionId: "${sub}", n: 50) }`, { user: "ann" });
    expect(short.status).toBe(402);
    expect(short.data).toBeNull();
    expect(short.errors![0].extensions).toMatchObject({ code: "INSUFFICIENT_CREDITS", required: 50, available: 6 });
    expect(await credits.admin.balances(sub)).toEqual({ calls: 6 });
  });

  it("keeps GraphQL's own request errors 4xx BAD_USER_INPUT without a formatError of the host", async () => {
    const res = await run(`mutation { work(subscriptionId: "${sub}") }`, { user: "ann" });
    expect(res.status).toBe(400);
    expect(res.errors![0].extensions.code).toBe("BAD_USER_INPUT");
  });

  it("grants, adjusts and refunds through the admin functions, refusing what the ledger cannot do", async () => {
    await credits.admin.grant({ subscriptionId: sub, creditType: "calls", amount: 4, reason: "promo" });
    await credits.admin.adjust({ subscriptionId: sub, creditType: "calls", delta: -2, reason: "correction" });
    expect(await credits.admin.balances(sub)).toEqual({ calls: 8 });
    const charged = await run(`mutation { work(subscriptionId: "${sub}", n: 2) }`, { user: "ann" });
    const entryId = charged.extensions!.credits.charges[0].entryId as string;
    const refund = await credits.admin.refund({ entryId, reason: "goodwill" });
    expect(refund.amount).toBe(2);
    expect(await credits.admin.balances(sub)).toEqual({ calls: 8 });
    await expect(credits.admin.grant({ subscriptionId: sub, creditType: "gold", amount: 1 })).rejects.toMatchObject({ extensions: { code: "BAD_USER_INPUT" } });
    await expect(credits.admin.adjust({ subscriptionId: sub, creditType: "calls", delta: -1_000 })).rejects.toMatchObject({ extensions: { code: "BAD_USER_INPUT" } });
    await expect(credits.admin.refund({ entryId, reason: "twice" })).rejects.toMatchObject({ extensions: { code: "BAD_USER_INPUT" } });
  });

  it("counts an operation's calls of one field together: more than the limit in one operation is told to split", async () => {
    // Six aliases against 5/1m can never pass; checked one by one, each was told to retry in a minute.
    const res = await run(`{ a: lookup b: lookup c: lookup d: lookup e: lookup f: lookup }`, { user: "ann", sub });
    expect(res.status).toBe(429);
    expect(res.errors![0]).toMatchObject({
      message: expect.stringContaining("split it into operations that need at most 5"),
      extensions: { code: "RATE_LIMITED", retryAfterSeconds: expect.any(Number) },
    });
    expect(res.extensions?.credits?.charges ?? []).toEqual([]);
    // Nothing was counted: four in one operation still fit (the next test's first call takes the fifth).
    const four = await run(`{ a: lookup b: lookup c: lookup d: lookup }`, { user: "ann", sub });
    expect(four.errors).toBeUndefined();
  });

  it("rate-limits metered fields per caller with the default rule (429, nothing charged)", async () => {
    const query = `{ lookup }`;
    let limited: Awaited<ReturnType<typeof run>> | undefined;
    for (let i = 0; i < 6 && !limited; i++) {
      const res = await run(query, { user: "ann", sub });
      if (res.status === 429) limited = res;
    }
    expect(limited!.errors![0].extensions).toMatchObject({ code: "RATE_LIMITED", retryAfterSeconds: expect.any(Number) });
    expect(limited!.extensions?.credits?.charges ?? []).toEqual([]);
  });
});

describe.each(BACKENDS)("a host meter that fails, through createCredits on %s", (backend) => {
  const captured = captureLogLines();
  const metrics = createCreditMetrics();
  let database: TestDatabase;
  let credits: Credits<HostContext>;
  let server: ApolloServer<HostContext>;
  let sub: string;

  beforeAll(async () => {
    database = await createTestDatabase(backend);
    credits = await createCredits<HostContext>({
      database: backend === "postgres" ? database.url! : database,
      migrate: true,
      creditTypes: ["calls"],
      estimators: { perItem: ({ n }: { n: number }) => n },
      // Counts the items, except for two inputs: one it throws on, one it answers NaN to.
      meters: {
        items: ({ n }: { n: number }, result: unknown[]) => {
          if (n === 7) throw new Error("meter backend down");
          return n === 8 ? Number.NaN : result.length;
        },
      },
      caller: (ctx) => (ctx.user ? { id: ctx.user, isAdmin: false } : undefined),
      subscription: (ctx) => ctx.sub,
      rateLimit: false,
      recovery: false,
      observers: [metricsObserver(metrics)],
      logger: createLogger("info", captured.destination),
    });
    server = new ApolloServer<HostContext>({ schema: credits.transform(buildSchema(SDL(credits.typeDefs)), resolvers), plugins: [credits.plugin] });
    sub = (await credits.admin.createSubscription({ ownerId: "ann", initialCredits: { calls: 100 } })).id;
  });
  afterAll(async () => {
    await server?.stop();
    await credits?.close();
    await database?.dispose();
  });

  const meterFailures = async () => (await metrics.meterFailures.get()).values.reduce((sum, v) => sum + v.value, 0);

  it.each([
    ["throws", 7],
    ["returns NaN", 8],
  ])("a meter that %s settles the call at its hold: nothing released, nothing refunded, logged and counted once", async (_, n) => {
    const failuresBefore = await meterFailures();
    const balanceBefore = (await credits.admin.balances(sub)).calls;
    const response = await server.executeOperation({ query: `mutation { work(subscriptionId: "${sub}", n: ${n}) }` }, { contextValue: { user: "ann" } });
    if (response.body.kind !== "single") throw new Error("expected a single result");
    const { data, extensions } = response.body.singleResult as { data?: unknown; extensions?: { credits?: any } };
    expect(data).toEqual({ work: [0, 1, 2] });
    const charge = extensions!.credits.charges[0];
    expect(charge).toMatchObject({ operation: "Mutation.work", estimated: n, charged: n, actual: null, released: 0, refunded: 0, cost: n, remaining: balanceBefore - n });
    expect(await credits.admin.balances(sub)).toEqual({ calls: balanceBefore - n });
    // The hold's DEBIT and nothing that gives any of it back.
    const entries = await queryRows<{ kind: string; amount: number }>(
      database.db,
      sql`select kind, amount from credit_ledger where id = ${charge.entryId}::uuid or refund_of = ${charge.entryId}::uuid order by seq`,
    );
    expect(entries.map((e) => [e.kind, Number(e.amount)])).toEqual([["DEBIT", -n]]);
    const logged = captured.lines.filter((l) => l.event === "credits.meter_failed" && l.entryId === charge.entryId);
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ meter: "items", charged: n, operation: "Mutation.work" });
    expect(await meterFailures()).toBe(failuresBefore + 1);
  });
});

describe("createCredits refuses a bad setup at start", () => {
  it("names the field of an unknown credit type or estimator, and wants a caller", async () => {
    const credits = await createCredits({ database: "memory://", creditTypes: ["calls"], caller: () => undefined, recovery: false });
    try {
      expect(() => credits.transform(buildSchema(`${credits.typeDefs} type Query { a: Int @credits(type: "gold", amount: 1) }`))).toThrow(/Query\.a.*"gold"/);
      expect(() => credits.transform(buildSchema(`${credits.typeDefs} type Query { a: Int @credits(type: "calls", estimator: "nope") }`))).toThrow(/Query\.a.*"nope"/);
      expect(() => credits.transform(buildSchema(`type Query { a: Int }`), { Query: { b: () => 1 } })).toThrow(/Query has no field b/);
    } finally {
      await credits.close();
    }
    await expect(createCredits({ database: "memory://", creditTypes: ["calls"] })).rejects.toThrow(/caller/);
  }, 120_000);
});

describe("createCredits' recovery pass", () => {
  it("runs at start and on its interval, and calls the host's afterPass after each pass", async () => {
    let passes = 0;
    const credits = await createCredits({
      database: "memory://",
      creditTypes: ["calls"],
      caller: () => undefined,
      recovery: { intervalMs: 50, afterPass: async () => void passes++ },
    });
    try {
      const deadline = Date.now() + 10_000;
      while (passes < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(passes).toBeGreaterThanOrEqual(2);
    } finally {
      await credits.close();
    }
    const stopped = passes;
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(passes).toBe(stopped);
  }, 120_000);
});
