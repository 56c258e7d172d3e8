/**
 * An operation that needs several slots of one counter (aliases of one field, all run or none) is
 * told when that many slots are free, and one that can never fit is told to split (an outside audit:
 * at 5/10s, after 1 call at t=0 and 4 at t=5, two aliases at t=6 can run at t=15, but were told 4 s
 * (memory) or 5 s (Redis) and refused again then; six aliases were told "10 s" forever).
 * The limiter on the memory store and on Redis (windows on an injected clock), then over HTTP.
 */
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createApp, type App } from "../../src/app/create-app.js";
import { loadConfig } from "../../src/config/config.js";
import { RateLimitedError } from "../../src/errors/errors.js";
import { createLogger } from "../../src/observability/logger.js";
import { MemoryRateLimitStore } from "../../src/ratelimit/memory-store.js";
import { defaultRule } from "../../src/ratelimit/rate-limit-rule.js";
import type { RateLimitStore } from "../../src/ratelimit/rate-limit-store.js";
import { RateLimiter, type RateLimitCaller } from "../../src/ratelimit/rate-limiter.js";
import { RedisRateLimitStore } from "../../src/ratelimit/redis-store.js";
import { createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { redisAvailable, TEST_REDIS_URL } from "../helpers/services.js";
import { fundedSubscription, postGraphQL, userToken } from "../helpers/test-app.js";

const logger = createLogger("silent");
const RULE = defaultRule("Query.searchLeads", { max: 5, window: "10s", windowMs: 10_000 });
const CALLER: RateLimitCaller = { viewer: { id: "aliases-user" }, clientAddress: "203.0.113.11" };
const NEVER_FITS = /^Too many calls to Query\.searchLeads in one operation: it needs 6 calls of it, more than the 5 allowed per 10s; split it/;

const calls = (count: number) => Array.from({ length: count }, () => ({ rule: RULE, args: {} }));

/** What each call of the operation got: "allowed", or its refusal's retry time and message. */
async function operation(limiter: RateLimiter, count: number) {
  const results = await limiter.checkAll(calls(count), CALLER);
  return results.map((r) => {
    if (r.status === "fulfilled") return "allowed" as const;
    expect(r.reason).toBeInstanceOf(RateLimitedError);
    const error = r.reason as RateLimitedError;
    return { retryAfterSeconds: error.extensions.retryAfterSeconds, message: error.message };
  });
}

const stores: Array<{ name: string; open: (prefix: string) => RateLimitStore; skip: boolean }> = [
  { name: "memory", open: () => new MemoryRateLimitStore(), skip: false },
  {
    name: "Redis",
    open: (keyPrefix) => new RedisRateLimitStore({ url: TEST_REDIS_URL, keyPrefix, timeoutMs: 2_000, logger, windowClock: "caller" }),
    skip: !redisAvailable,
  },
];

describe.each(stores)("an operation needing several slots of one counter ($name store)", ({ open, skip }) => {
  let store: RateLimitStore | undefined;
  let keyPrefix: string;
  afterEach(async () => {
    await store?.close();
    if (!redisAvailable) return;
    const client = new Redis(TEST_REDIS_URL);
    const keys = await client.keys(`${keyPrefix}*`);
    if (keys.length > 0) await client.del(...keys);
    client.disconnect();
  });

  function limiterAt(start: number) {
    keyPrefix = `test:rl:slots:${randomBytes(6).toString("hex")}:`;
    store = open(keyPrefix);
    const clock = { now: start };
    return { clock, limiter: new RateLimiter({ store, onStoreError: "closed", logger, now: () => clock.now }) };
  }

  it.skipIf(skip)("is told when as many slots as it needs are free, and passes then", async () => {
    const { clock, limiter } = limiterAt(1_700_000_000_000);
    const t0 = clock.now;
    expect(await operation(limiter, 1)).toEqual(["allowed"]);
    clock.now = t0 + 5_000;
    for (let i = 0; i < 4; i++) expect(await operation(limiter, 1)).toEqual(["allowed"]);
    clock.now = t0 + 6_000;
    const refused = await operation(limiter, 2);
    // Two slots are free when the calls of t=5 leave the window, at t=15.
    expect(refused).toEqual([
      { retryAfterSeconds: 9, message: "Too many calls to Query.searchLeads: at most 5 per 10s, and this operation needs 2; try again in 9 s" },
      { retryAfterSeconds: 9, message: expect.any(String) },
    ]);
    clock.now = t0 + 10_000; // one slot is free: not enough (the call that does not fit is refused)
    expect(await operation(limiter, 2)).toEqual(["allowed", { retryAfterSeconds: 5, message: expect.stringContaining("this operation needs 2") }]);
    clock.now = t0 + 15_000;
    expect(await operation(limiter, 2)).toEqual(["allowed", "allowed"]);
  });

  it.skipIf(skip)("that can never fit is told to split it, on the calls beyond the limit, and counts nothing", async () => {
    const { limiter } = limiterAt(1_700_000_000_000);
    const results = await operation(limiter, 6);
    expect(results.slice(0, 5)).toEqual(Array(5).fill("allowed"));
    expect(results[5]).toEqual({ retryAfterSeconds: 10, message: expect.stringMatching(NEVER_FITS) });
    // Nothing was recorded: an operation of five still fits.
    expect(await operation(limiter, 5)).toEqual(Array(5).fill("allowed"));
  });
});

describe("over HTTP: aliases of one metered field, counted together (memory store)", () => {
  const ALIASES = (count: number) =>
    `mutation($s: ID!) { ${Array.from({ length: count }, (_, i) => `a${i}: searchLeads(subscriptionId: $s, input: { query: "roofers", limit: 1 }) { total }`).join("\n")} }`;
  let database: TestDatabase;
  let app: App;
  let endpoint: string;
  const clock = { now: Date.now() };

  beforeAll(async () => {
    database = await createTestDatabase("pglite");
    const config = loadConfig({ PGLITE_DIR: "memory://", LOG_LEVEL: "silent", NODE_ENV: "test", REQUEST_LIMIT: "1000000/1m", RATE_LIMIT_DEFAULT: "5/10s" });
    app = await createApp(config, { database, logger: createLogger("silent"), clock: () => new Date(clock.now) });
    endpoint = `${await app.listen(0, "127.0.0.1")}/graphql`;
  });
  afterAll(async () => {
    await app?.close();
    await database?.dispose();
  });

  it("two aliases after a staggered window are told 9 s, and pass then; six are told to split", async () => {
    const subscriptionId = await fundedSubscription(database, "http-aliases-user", { leads: 1_000 });
    const token = await userToken("http-aliases-user");
    const send = (count: number) => postGraphQL(endpoint, ALIASES(count), { s: subscriptionId }, { token });
    const t0 = clock.now;
    expect((await send(1)).status).toBe(200);
    clock.now = t0 + 5_000;
    expect((await send(4)).status).toBe(200);
    clock.now = t0 + 6_000;
    const refused = await send(2);
    expect(refused.status).toBe(429);
    expect(refused.body.errors!.map((e) => [e.path, e.extensions.code, e.extensions.retryAfterSeconds])).toEqual([
      [["a0"], "RATE_LIMITED", 9],
      [["a1"], "RATE_LIMITED", 9],
    ]);
    clock.now = t0 + 15_000;
    expect((await send(2)).status).toBe(200);

    clock.now = t0 + 60_000;
    const never = await send(6);
    expect(never.status).toBe(429);
    expect(never.body.errors!.map((e) => [e.path, e.extensions.code, e.extensions.retryAfterSeconds])).toEqual([[["a5"], "RATE_LIMITED", 10]]);
    expect(never.body.errors![0].message).toMatch(/^Too many calls to Mutation\.searchLeads in one operation: it needs 6 calls of it, more than the 5 allowed per 10s; split it/);
    expect((await send(5)).status).toBe(200);
  });
});
