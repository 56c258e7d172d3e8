/**
 * The @rateLimit directive on a schema written as SDL (the served schema has no @rateLimit field
 * without @credits): validation at transform time, the transformer's wrapping, graphql-rate-limit's
 * meaning (per caller, identityArgs, arrayLengthField, aliases as separate calls), windows on an
 * injected clock, the charge path's gate (own limit, else RATE_LIMIT_DEFAULT) and the store-failure
 * modes.
 */
import { buildSchema, execute, parse, type GraphQLSchema } from "graphql";
import { beforeEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/config.js";
import { CREDITS_DIRECTIVE_SDL, readMeteredFields } from "../../src/credits/credits-directive.js";
import { CREDIT_TYPE_NAMES } from "../../src/credits/credit-types.js";
import { ESTIMATORS } from "../../src/credits/estimators/registry.js";
import { METERS } from "../../src/credits/meters/registry.js";
import { RateLimitedError } from "../../src/errors/errors.js";
import { createLogger } from "../../src/observability/logger.js";
import { createRateLimiting, type RateLimiting } from "../../src/ratelimit/create-rate-limiting.js";
import { MemoryRateLimitStore } from "../../src/ratelimit/memory-store.js";
import { RATE_LIMIT_DIRECTIVE_SDL, RateLimitDirectiveError, readRateLimitRules } from "../../src/ratelimit/rate-limit-directive.js";
import type { RateLimitStore } from "../../src/ratelimit/rate-limit-store.js";

const T0 = 1_700_000_000_000;
const silent = createLogger("silent");

const sdl = (queryFields: string) => `
  ${RATE_LIMIT_DIRECTIVE_SDL}
  ${CREDITS_DIRECTIVE_SDL}
  input TraceInput { records: [String!]!, tag: String, nested: NestedInput }
  input NestedInput { ids: [ID!] }
  type Query { ${queryFields} }
  type Mutation {
    metered(subscriptionId: ID!): String @credits(type: "ai", amount: 1) @rateLimit(max: 2, window: "30s")
    meteredDefault(subscriptionId: ID!): String @credits(type: "ai", amount: 1)
  }
`;

const FIELDS = `
  hello: String @rateLimit(max: 3, window: "1m")
  perSubscription(subscriptionId: ID!): String @rateLimit(max: 1, window: "10s", identityArgs: ["subscriptionId"], message: "Slow down")
  trace(input: TraceInput!): Int @rateLimit(max: 5, window: "1m", arrayLengthField: "input.records")
  librarydefaults: String @rateLimit
  free: String
`;

const rootValue = {
  hello: () => "hi",
  perSubscription: ({ subscriptionId }: { subscriptionId: string }) => subscriptionId,
  trace: ({ input }: { input: { records: string[] } }) => input.records.length,
  librarydefaults: () => "ok",
  free: () => "free",
};

const context = (over: Record<string, unknown> = {}) => ({
  viewer: { id: "user-1", isAdmin: false },
  clientAddress: "10.0.0.1",
  requestId: "req-1",
  logger: silent,
  ...over,
});

describe("@rateLimit on an SDL schema", () => {
  let now: number;
  let limits: RateLimiting;
  let schema: GraphQLSchema;
  const run = (query: string, ctx = context()) => execute({ schema, document: parse(query), rootValue, contextValue: ctx }) as Promise<any>;

  beforeEach(() => {
    now = T0;
    const base = buildSchema(sdl(FIELDS));
    limits = createRateLimiting({ config: loadConfig({ RATE_LIMIT_DEFAULT: "4/1m" }), logger: silent, schema: base, now: () => now });
    schema = limits.transform(base);
  });

  it("counts each alias as one call, refuses the rest with RATE_LIMITED and a retry time", async () => {
    const result = await run("{ a: hello b: hello c: hello d: hello e: hello }");
    expect(result.data).toEqual({ a: "hi", b: "hi", c: "hi", d: null, e: null });
    expect(result.errors).toHaveLength(2);
    for (const error of result.errors) {
      expect(error.originalError).toBeInstanceOf(RateLimitedError);
      expect(error.extensions).toMatchObject({ code: "RATE_LIMITED", retryAfterSeconds: 60, http: { status: 429 } });
      expect(error.message).toBe("Too many calls to Query.hello: at most 3 per 1m; try again in 60 s");
    }
  });

  it("lets calls through again once the window has passed (fake clock, no sleeping)", async () => {
    await run("{ a: hello b: hello c: hello }");
    now = T0 + 59_999;
    expect((await run("{ hello }")).errors?.[0].extensions.retryAfterSeconds).toBe(1);
    now = T0 + 60_000;
    expect(await run("{ a: hello b: hello c: hello }")).toEqual({ data: { a: "hi", b: "hi", c: "hi" } });
    expect((await run("{ hello }")).errors).toHaveLength(1);
  });

  it("keys counters by caller: token subject, else the client address", async () => {
    await run("{ a: hello b: hello c: hello }");
    expect((await run("{ hello }")).errors).toHaveLength(1);
    expect(await run("{ hello }", context({ viewer: { id: "user-2", isAdmin: false } }))).toEqual({ data: { hello: "hi" } });
    const anonymous = (address: string) => context({ viewer: undefined, clientAddress: address });
    expect((await run("{ a: hello b: hello c: hello d: hello }", anonymous("192.0.2.7"))).errors).toHaveLength(1);
    expect(await run("{ hello }", anonymous("192.0.2.8"))).toEqual({ data: { hello: "hi" } });
    // A signed-in caller from the exhausted address has their own counter.
    expect(await run("{ hello }", context({ viewer: { id: "user-3", isAdmin: false }, clientAddress: "192.0.2.7" }))).toEqual({ data: { hello: "hi" } });
  });

  it("identityArgs make separate counters per value; the directive's message is used as given", async () => {
    expect(await run('{ a: perSubscription(subscriptionId: "s1") b: perSubscription(subscriptionId: "s2") }')).toEqual({ data: { a: "s1", b: "s2" } });
    const again = await run('{ perSubscription(subscriptionId: "s1") }');
    expect(again.errors[0].message).toBe("Slow down");
    expect(again.errors[0].extensions).toMatchObject({ code: "RATE_LIMITED", retryAfterSeconds: 10 });
  });

  it("arrayLengthField counts a call as the length of its list", async () => {
    const trace = (n: number) => run(`{ trace(input: { records: [${Array.from({ length: n }, (_, i) => `"r${i}"`).join(",")}] }) }`);
    expect(await trace(3)).toEqual({ data: { trace: 3 } });
    expect((await trace(3)).errors[0].extensions.code).toBe("RATE_LIMITED");
    expect(await trace(2)).toEqual({ data: { trace: 2 } });
    now += 60_000;
    const tooMany = await trace(6);
    expect(tooMany.errors[0].message).toMatch(/Too many items for Query\.trace: this call counts as 6 \(the length of input\.records\), more than the 5 allowed per 1m/);
    expect(tooMany.errors[0].extensions.retryAfterSeconds).toBe(60);
    // The refused 6 took nothing: the full 5 are still free.
    expect(await trace(5)).toEqual({ data: { trace: 5 } });
  });

  it("a bare @rateLimit has graphql-rate-limit's defaults (5 per minute); fields without it are untouched", async () => {
    expect(readRateLimitRules(schema).get("Query.librarydefaults")).toMatchObject({ max: 5, windowMs: 60_000 });
    const result = await run("{ a: librarydefaults b: librarydefaults c: librarydefaults d: librarydefaults e: librarydefaults f: librarydefaults g: free h: free }");
    expect(result.errors).toHaveLength(1);
    expect(result.data).toMatchObject({ e: "ok", f: null, g: "free", h: "free" });
  });

  it("leaves @credits fields to the charge wrapper, whose gate applies their own limit, else RATE_LIMIT_DEFAULT", async () => {
    const base = buildSchema(sdl(FIELDS));
    const transformed = limits.transform(base);
    expect(transformed.getMutationType()!.getFields().metered.resolve).toBe(base.getMutationType()!.getFields().metered.resolve);

    const fields = readMeteredFields(base, { creditTypes: CREDIT_TYPE_NAMES, estimators: ESTIMATORS, meters: METERS });
    const metered = fields.find((f) => f.fieldName === "metered")!;
    const meteredDefault = fields.find((f) => f.fieldName === "meteredDefault")!;
    const check = (field: typeof metered, ctx = context()) =>
      limits.gate.checkMetered(field, { subscriptionId: "s" }, ctx as never, {} as never).then(
        () => "ran",
        (err: RateLimitedError) => err.extensions,
      );

    expect([await check(metered), await check(metered), await check(metered)]).toEqual([
      "ran",
      "ran",
      expect.objectContaining({ code: "RATE_LIMITED", retryAfterSeconds: 30 }),
    ]);
    const defaults = [];
    for (let i = 0; i < 5; i++) defaults.push(await check(meteredDefault));
    expect(defaults).toEqual(["ran", "ran", "ran", "ran", expect.objectContaining({ code: "RATE_LIMITED", retryAfterSeconds: 60 })]);
  });

  it("of 50 simultaneous metered calls against the limit, exactly that many pass (memory store)", async () => {
    const fields = readMeteredFields(buildSchema(sdl(FIELDS)), { creditTypes: CREDIT_TYPE_NAMES, estimators: ESTIMATORS, meters: METERS });
    const meteredDefault = fields.find((f) => f.fieldName === "meteredDefault")!;
    const outcomes = await Promise.allSettled(
      Array.from({ length: 50 }, () => limits.gate.checkMetered(meteredDefault, {}, context() as never, {} as never)),
    );
    expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(4);
  });
});

describe("@rateLimit validation at transform time", () => {
  it.each([
    ['@rateLimit(max: 3, window: "5 parsecs")', /Query\.search: @rateLimit window "5 parsecs" is not a duration/],
    ['@rateLimit(max: 0, window: "1m")', /Query\.search: @rateLimit max must be a whole number of at least 1, got 0/],
    ['@rateLimit(max: -2)', /Query\.search: @rateLimit max must be a whole number of at least 1/],
    ['@rateLimit(identityArgs: ["nope"])', /Query\.search: @rateLimit identityArgs entry "nope" must name a scalar or enum argument/],
    ['@rateLimit(identityArgs: ["input"])', /Query\.search: @rateLimit identityArgs entry "input" must name a scalar or enum/],
    ['@rateLimit(identityArgs: ["input.records"])', /identityArgs entry "input\.records"/],
    ['@rateLimit(arrayLengthField: "input.tag")', /Query\.search: @rateLimit arrayLengthField "input\.tag" must name a list argument/],
    ['@rateLimit(arrayLengthField: "records")', /arrayLengthField "records" must name a list argument/],
  ])("refuses %s at start, naming the field", (directive, message) => {
    const schema = buildSchema(sdl(`search(term: String, input: TraceInput): String ${directive}`));
    expect(() => readRateLimitRules(schema)).toThrow(RateLimitDirectiveError);
    expect(() => createRateLimiting({ config: loadConfig({}), logger: silent, schema })).toThrow(message);
  });

  it("accepts argument paths into input objects", () => {
    const schema = buildSchema(
      sdl('search(term: String, input: TraceInput): String @rateLimit(identityArgs: ["term", "input.tag"], arrayLengthField: "input.nested.ids")'),
    );
    expect(readRateLimitRules(schema).get("Query.search")).toMatchObject({
      identityArgs: ["term", "input.tag"],
      arrayLengthField: "input.nested.ids",
      max: 5,
      window: "1m",
    });
  });
});

describe("when the rate-limit store fails", () => {
  const failingStore = (): RateLimitStore & { failing: boolean } => {
    const memory = new MemoryRateLimitStore();
    return {
      kind: "redis",
      failing: true,
      async hit(hit) {
        if (this.failing) throw new Error("connect ECONNREFUSED 127.0.0.1:6379");
        return memory.hit(hit);
      },
      close: () => memory.close(),
    };
  };

  const setup = (mode: "open" | "closed") => {
    const lines: any[] = [];
    const logger = createLogger("info", { write: (line: string) => void lines.push(JSON.parse(line)) });
    const store = failingStore();
    const base = buildSchema(sdl(FIELDS));
    const limits = createRateLimiting({ config: loadConfig({ RATE_LIMIT_ON_STORE_ERROR: mode }), logger, schema: base, store, now: () => T0 });
    const schema = limits.transform(base);
    const run = (query: string) => execute({ schema, document: parse(query), rootValue, contextValue: context() }) as Promise<any>;
    return { lines, store, run };
  };

  it("fail-closed (the default): refuses with RATE_LIMITED, retryAfterSeconds 1 and says the limiter is unavailable; logs once", async () => {
    const { lines, store, run } = setup("closed");
    const result = await run("{ a: hello b: hello }");
    expect(result.data).toEqual({ a: null, b: null });
    expect(result.errors[0].message).toBe("Rate limiter unavailable: try again in a second");
    expect(result.errors[0].extensions).toMatchObject({ code: "RATE_LIMITED", retryAfterSeconds: 1, http: { status: 429 } });
    const failures = lines.filter((l) => /rate limit store failed/.test(l.msg));
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({ level: 50, onStoreError: "closed", store: "redis", operation: "Query.hello" });
    expect(failures[0].msg).toMatch(/refused \(fail-closed\)/);

    store.failing = false;
    expect(await run("{ hello }")).toEqual({ data: { hello: "hi" } });
    expect(lines.some((l) => /rate limit store answers again/.test(l.msg))).toBe(true);
  });

  it("fail-open: lets calls run unlimited and logs it", async () => {
    const { lines, run } = setup("open");
    expect(await run("{ a: hello b: hello c: hello d: hello e: hello }")).toEqual({
      data: { a: "hi", b: "hi", c: "hi", d: "hi", e: "hi" },
    });
    expect(lines.filter((l) => /rate limit store failed/.test(l.msg))).toEqual([
      expect.objectContaining({ onStoreError: "open", msg: expect.stringMatching(/fail-open/) }),
    ]);
  });
});
