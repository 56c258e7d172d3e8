/**
 * What docs/library.md promises a host that sets nothing beyond the complete server's options:
 * - a retry with the same Idempotency-Key header replays (the library reads the header itself);
 * - `@rateLimit` is declared by `credits.typeDefs` and honoured, and every @credits field has the
 *   server's default limit (60/1m) unless the host turns it off; `redisUrl` shares the counts;
 * - every @credits field takes the admin's `creditAmount: Int` without the host declaring it;
 * - an unexpected error is logged (stderr) with its detail while the client sees it masked;
 * - an open, unmigrated database handle is migrated;
 * - the 401 of a metered call names no authentication scheme of this server's, or says the host's words.
 */
import { randomBytes } from "node:crypto";
import { ApolloServer, HeaderMap } from "@apollo/server";
import { startStandaloneServer } from "@apollo/server/standalone";
import { buildSchema, getNamedType, GraphQLObjectType } from "graphql";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createCredits, type Credits, type CreditsOptions } from "../../src/library/index.js";
import { createPgliteDatabase, unmigratedPgliteHandle, type TestDatabase } from "../helpers/databases.js";
import { redisAvailable, TEST_REDIS_URL } from "../helpers/services.js";

interface Ctx {
  user?: string;
}

interface Answer {
  status: number;
  data?: Record<string, unknown> | null;
  errors?: { message: string; extensions: Record<string, any> }[];
  extensions?: { credits?: any };
}

const caller = (ctx: Ctx) => (ctx.user ? { id: ctx.user, isAdmin: ctx.user === "root" } : undefined);

let database: TestDatabase;
beforeAll(async () => {
  database = await createPgliteDatabase();
}, 120_000);
afterAll(async () => {
  await database?.dispose();
});

/** A host on the shared PGlite database with `sdl` and `resolvers`; closed by the returned stop(). */
async function host(
  sdl: (typeDefs: string) => string,
  resolvers: Record<string, Record<string, (...a: any[]) => unknown>>,
  options: Partial<CreditsOptions<Ctx>> = {},
  start = true,
) {
  const credits: Credits<Ctx> = await createCredits<Ctx>({ database, creditTypes: ["calls"], caller, recovery: false, ...options });
  const schema = credits.transform(buildSchema(sdl(credits.typeDefs)), resolvers);
  const server = new ApolloServer<Ctx>({ schema, plugins: [credits.plugin] });
  if (start) await server.start();
  const sub = (await credits.admin.createSubscription({ ownerId: "ann", initialCredits: { calls: 1_000 } })).id;
  async function run(query: string, user?: string, headers: [string, string][] = []): Promise<Answer> {
    const http = { method: "POST", headers: new HeaderMap(headers), search: "", body: {} };
    const response = await server.executeOperation({ query, http }, { contextValue: { user } });
    if (response.body.kind !== "single") throw new Error("expected a single result");
    return { status: response.http.status ?? 200, ...response.body.singleResult } as Answer;
  }
  return { credits, schema, server, sub, run, stop: async () => (await server.stop(), await credits.close()) };
}

const WORK_SDL = (typeDefs: string) => `${typeDefs}
  type Query { hello: String }
  type Mutation { work(subscriptionId: ID!, n: Int!): Int! @credits(type: "calls", amount: 2) }`;
const WORK = { Mutation: { work: (_: unknown, { n }: { n: number }) => n } };

describe("Idempotency-Key without an idempotencyKey reader", () => {
  let stop: () => Promise<unknown>;
  let credits: Credits<Ctx>;
  let sub: string;
  let url: string;

  beforeAll(async () => {
    const h = await host(WORK_SDL, WORK, { rateLimit: false }, false);
    ({ credits, sub } = h);
    stop = h.stop;
    // Over real HTTP, as the docs' server: the host's context carries the caller only.
    const { url: listening } = await startStandaloneServer(h.server, { listen: { port: 0 }, context: async ({ req }) => ({ user: req.headers["x-user"] as string | undefined }) });
    url = listening;
  }, 120_000);
  afterAll(async () => stop?.());

  async function post(query: string, headers: Record<string, string>): Promise<Answer> {
    const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json", "x-user": "ann", ...headers }, body: JSON.stringify({ query }) });
    return { status: res.status, ...((await res.json()) as object) };
  }

  it("replays a retry with the same Idempotency-Key header instead of charging it again", async () => {
    const query = `mutation { work(subscriptionId: "${sub}", n: 7) }`;
    const first = await post(query, { "idempotency-key": "retry-1" });
    expect(first.data).toEqual({ work: 7 });
    expect(first.extensions!.credits.charges[0]).toMatchObject({ charged: 2, cost: 2, remaining: 998 });
    const second = await post(query, { "idempotency-key": "retry-1" });
    expect(second.data).toEqual({ work: 7 });
    expect(second.extensions!.credits.charges[0]).toMatchObject({ charged: 2, replayed: true });
    expect(await credits.admin.balances(sub)).toEqual({ calls: 998 });
    // Another key is another call.
    await post(query, { "idempotency-key": "retry-2" });
    expect(await credits.admin.balances(sub)).toEqual({ calls: 996 });
  });

  it("refuses the key with other arguments, and a malformed key, as the server does (400 BAD_USER_INPUT, nothing charged)", async () => {
    const other = await post(`mutation { work(subscriptionId: "${sub}", n: 8) }`, { "idempotency-key": "retry-1" });
    expect(other.status).toBe(400);
    expect(other.errors![0].extensions).toMatchObject({ code: "BAD_USER_INPUT", field: "Idempotency-Key" });
    const long = await post(`mutation { work(subscriptionId: "${sub}", n: 1) }`, { "idempotency-key": "k".repeat(256) });
    expect(long.status).toBe(400);
    expect(long.errors![0].message).toMatch(/Idempotency-Key must be 1 to 255 printable ASCII characters/);
    expect(await credits.admin.balances(sub)).toEqual({ calls: 996 });
  });
});

describe("Idempotency-Key: the host's reader, or idempotency: false", () => {
  it("uses the host's idempotencyKey(ctx) when given, and charges every call when idempotency is off", async () => {
    const own = await host(WORK_SDL, WORK, { rateLimit: false, idempotencyKey: () => "from-context" });
    const off = await host(WORK_SDL, WORK, { rateLimit: false, idempotency: false });
    try {
      const q = (sub: string) => `mutation { work(subscriptionId: "${sub}", n: 1) }`;
      await own.run(q(own.sub), "ann");
      expect((await own.run(q(own.sub), "ann", [["idempotency-key", "ignored"]])).extensions!.credits.charges[0].replayed).toBe(true);
      await off.run(q(off.sub), "ann", [["idempotency-key", "k"]]);
      await off.run(q(off.sub), "ann", [["idempotency-key", "k"]]);
      expect(await off.credits.admin.balances(off.sub)).toEqual({ calls: 996 });
    } finally {
      await own.stop();
      await off.stop();
    }
  }, 120_000);
});

const LIMITS_SDL = (typeDefs: string) => `${typeDefs}
  type Query { ping: String @rateLimit(max: 1, window: "1m") }
  type Mutation {
    limited(subscriptionId: ID!): Int @credits(type: "calls", amount: 1) @rateLimit(max: 2, window: "1m")
    plain(subscriptionId: ID!): Int @credits(type: "calls", amount: 1)
  }`;
const LIMITS = { Query: { ping: () => "pong" }, Mutation: { limited: () => 1, plain: () => 1 } };

async function countRuns(run: (q: string, user?: string) => Promise<Answer>, query: string, calls: number, user = "ann") {
  let ran = 0;
  let limited: Answer | undefined;
  for (let i = 0; i < calls; i++) {
    const res = await run(query, user);
    if (res.errors?.[0]?.extensions.code === "RATE_LIMITED") limited ??= res;
    else if (!res.errors) ran++;
    else throw new Error(JSON.stringify(res.errors));
  }
  return { ran, limited };
}

describe("rate limits with no rateLimit option", () => {
  let h: Awaited<ReturnType<typeof host>>;
  beforeAll(async () => {
    h = await host(LIMITS_SDL, LIMITS);
  }, 120_000);
  afterAll(async () => h?.stop());

  it("declares @rateLimit in typeDefs and honours it on a metered field (429, nothing charged)", async () => {
    const before = (await h.credits.admin.balances(h.sub)).calls;
    const { ran, limited } = await countRuns(h.run, `mutation { limited(subscriptionId: "${h.sub}") }`, 5);
    expect(ran).toBe(2);
    expect(limited!.status).toBe(429);
    expect(limited!.errors![0].extensions).toMatchObject({ code: "RATE_LIMITED", retryAfterSeconds: expect.any(Number) });
    expect((await h.credits.admin.balances(h.sub)).calls).toBe(before - 2);
  });

  it("gives every other @credits field the server's default limit, 60 a minute per caller", async () => {
    const { ran, limited } = await countRuns(h.run, `mutation { plain(subscriptionId: "${h.sub}") }`, 62);
    expect(ran).toBe(60);
    expect(limited!.errors![0].message).toMatch(/at most 60 per 1m/);
  });

  it("limits a field without @credits per caller, the caller found through the host's context", async () => {
    expect((await countRuns(h.run, `{ ping }`, 2, "ann")).ran).toBe(1);
    expect((await countRuns(h.run, `{ ping }`, 1, "bob")).ran).toBe(1);
  });
});

describe("rate limits the host turned off", () => {
  it("{ default: false } keeps @rateLimit but drops the default; false drops both; { default } sets it", async () => {
    const noDefault = await host(LIMITS_SDL, LIMITS, { rateLimit: { default: false } });
    const none = await host(LIMITS_SDL, LIMITS, { rateLimit: false });
    const own = await host(LIMITS_SDL, LIMITS, { rateLimit: { default: "3/1m" } });
    try {
      expect((await countRuns(noDefault.run, `mutation { plain(subscriptionId: "${noDefault.sub}") }`, 65)).ran).toBe(65);
      expect((await countRuns(noDefault.run, `mutation { limited(subscriptionId: "${noDefault.sub}") }`, 3)).ran).toBe(2);
      expect((await countRuns(none.run, `mutation { limited(subscriptionId: "${none.sub}") }`, 4)).ran).toBe(4);
      expect((await countRuns(none.run, `{ ping }`, 3)).ran).toBe(3);
      expect((await countRuns(own.run, `mutation { plain(subscriptionId: "${own.sub}") }`, 5)).ran).toBe(3);
      await expect(createCredits({ database, creditTypes: ["calls"], caller, recovery: false, rateLimit: { default: "lots" } })).rejects.toThrow(/rateLimit\.default "lots"/);
    } finally {
      await noDefault.stop();
      await none.stop();
      await own.stop();
    }
  }, 120_000);
});

describe.skipIf(!redisAvailable)("rate limits shared through Redis", () => {
  it("counts calls of two hosts with the same redisUrl together", async () => {
    const keyPrefix = `test:${randomBytes(4).toString("hex")}:`;
    const a = await host(LIMITS_SDL, LIMITS, { rateLimit: { redisUrl: TEST_REDIS_URL, keyPrefix } });
    const b = await host(LIMITS_SDL, LIMITS, { rateLimit: { redisUrl: TEST_REDIS_URL, keyPrefix } });
    try {
      const onA = await countRuns(a.run, `{ ping }`, 1);
      const onB = await countRuns(b.run, `{ ping }`, 1);
      expect(onA.ran + onB.ran).toBe(1);
    } finally {
      await a.stop();
      await b.stop();
    }
  }, 120_000);
});

describe("the admin's creditAmount", () => {
  let h: Awaited<ReturnType<typeof host>>;
  const SDL = (typeDefs: string) => `${typeDefs}
    type Query { hello: String }
    type Mutation {
      work(subscriptionId: ID!, n: Int!): Int! @credits(type: "calls", amount: 2)
      priced(subscriptionId: ID!, creditAmount: Int): Int @credits(type: "calls", amount: 5)
      free(n: Int): Int
    }`;
  beforeAll(async () => {
    h = await host(SDL, { Mutation: { work: (_: unknown, { n }: { n: number }) => n, priced: () => 1, free: () => 1 } }, { rateLimit: false });
  }, 120_000);
  afterAll(async () => h?.stop());

  it("is added to every @credits field that lacks it, and to no other field", async () => {
    const mutation = h.schema.getMutationType() as GraphQLObjectType;
    const args = (name: string) => mutation.getFields()[name].args.map((a) => `${a.name}: ${a.type.toString()}`);
    expect(args("work")).toEqual(["subscriptionId: ID!", "n: Int!", "creditAmount: Int"]);
    expect(args("priced")).toEqual(["subscriptionId: ID!", "creditAmount: Int"]);
    expect(args("free")).toEqual(["n: Int"]);
    expect(getNamedType(mutation.getFields().work.args[2].type).name).toBe("Int");
  });

  it("sets the price for an admin (0 allowed) and is refused to anyone else (403, nothing charged)", async () => {
    const before = (await h.credits.admin.balances(h.sub)).calls;
    const admin = await h.run(`mutation { work(subscriptionId: "${h.sub}", n: 1, creditAmount: 0) }`, "root");
    expect(admin.data).toEqual({ work: 1 });
    expect(admin.extensions!.credits.charges[0]).toMatchObject({ estimated: 2, charged: 0, cost: 0, adminOverride: true });
    const set = await h.run(`mutation { work(subscriptionId: "${h.sub}", n: 1, creditAmount: 9) }`, "root");
    expect(set.extensions!.credits.charges[0]).toMatchObject({ charged: 9, cost: 9, adminOverride: true });
    const owner = await h.run(`mutation { work(subscriptionId: "${h.sub}", n: 1, creditAmount: 0) }`, "ann");
    expect(owner.status).toBe(403);
    expect(owner.errors![0].extensions.code).toBe("FORBIDDEN");
    expect(owner.errors![0].message).toMatch(/creditAmount is for admins only/);
    expect((await h.credits.admin.balances(h.sub)).calls).toBe(before - 9);
  });
});

describe("the default logger", () => {
  it("writes an unexpected error's detail to stderr (the client sees it masked), and no line per charge", async () => {
    const written: string[] = [];
    const spy = vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    const h = await host(
      (typeDefs) => `${typeDefs} type Query { hello: String } type Mutation { boom(subscriptionId: ID!): Int @credits(type: "calls", amount: 1) ok(subscriptionId: ID!): Int @credits(type: "calls", amount: 1) }`,
      { Mutation: { boom: () => { throw new Error('relation "secret_table" does not exist'); }, ok: () => 1 } },
      { rateLimit: false },
    );
    try {
      await h.run(`mutation { ok(subscriptionId: "${h.sub}") }`, "ann");
      const res = await h.run(`mutation { boom(subscriptionId: "${h.sub}") }`, "ann");
      expect(res.status).toBe(500);
      expect(JSON.stringify(res.errors)).not.toContain("secret_table");
    } finally {
      spy.mockRestore();
      await h.stop();
    }
    const lines = written.join("").split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, any>);
    const unexpected = lines.find((l) => l.msg?.includes("unexpected error"));
    expect(unexpected).toMatchObject({ level: 50, err: { message: 'relation "secret_table" does not exist' } });
    expect(lines.filter((l) => l.event === "credits.held")).toEqual([]);
  }, 120_000);
});

describe("an open database handle", () => {
  it("is migrated by createCredits unless migrate: false", async () => {
    const handle = unmigratedPgliteHandle();
    try {
      await expect(createCredits({ database: handle, migrate: false, creditTypes: ["calls"], caller, recovery: false })).rejects.toThrow();
      const credits = await createCredits({ database: handle, creditTypes: ["calls"], caller, recovery: false, rateLimit: false });
      const sub = await credits.admin.createSubscription({ ownerId: "ann", initialCredits: { calls: 3 } });
      expect(await credits.admin.balances(sub.id)).toEqual({ calls: 3 });
      await credits.close();
      // Not closed by createCredits: the host opened it.
      await handle.ping();
    } finally {
      await handle.close();
    }
  }, 120_000);
});

describe("UNAUTHENTICATED from the library", () => {
  it("names no authentication scheme by default, and says the host's words when given", async () => {
    const plain = await host(WORK_SDL, WORK, { rateLimit: false });
    const worded = await host(WORK_SDL, WORK, { rateLimit: false, unauthenticatedMessage: "Sign in at https://example.test/login" });
    try {
      const anonymous = await plain.run(`mutation { work(subscriptionId: "${plain.sub}", n: 1) }`);
      expect(anonymous.status).toBe(401);
      expect(anonymous.errors![0].extensions.code).toBe("UNAUTHENTICATED");
      expect(anonymous.errors![0].message).not.toMatch(/Bearer|Authorization/);
      expect(anonymous.errors![0].message).toMatch(/^Authentication required/);
      const own = await worded.run(`mutation { work(subscriptionId: "${worded.sub}", n: 1) }`);
      expect(own.errors![0].message).toBe("Sign in at https://example.test/login");
    } finally {
      await plain.stop();
      await worded.stop();
    }
  }, 120_000);
});
