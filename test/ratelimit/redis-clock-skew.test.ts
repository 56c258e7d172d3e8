/**
 * Instances sharing Redis whose clocks disagree (an outside audit: +90 s, 0 and -5 min) still share
 * one exact limit, and tell a refused caller to retry within the window. Each instance is a
 * RedisRateLimitStore as the server builds it and a RateLimiter whose clock (the instance's clock,
 * Date.now by default) runs `skewMs` off the real time. Stamped with each instance's own time, the
 * instance ahead trimmed the others' calls and the one behind was out of everyone's window: 180
 * calls passed against 60/1m, and retry times ran to 149 s and 449 s.
 */
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/config.js";
import { RateLimitedError } from "../../src/errors/errors.js";
import { createLogger } from "../../src/observability/logger.js";
import { defaultRule } from "../../src/ratelimit/rate-limit-rule.js";
import { RateLimiter, type RateLimitCaller } from "../../src/ratelimit/rate-limiter.js";
import { RedisRateLimitStore } from "../../src/ratelimit/redis-store.js";
import { redisAvailable, TEST_REDIS_URL } from "../helpers/services.js";

const logger = createLogger("silent");
/** RATE_LIMIT_DEFAULT's default, 60/1m, as every metered field without its own @rateLimit gets it. */
const RULE = defaultRule("Mutation.runAiTask", loadConfig({}).RATE_LIMIT_DEFAULT);
const CALLER: RateLimitCaller = { viewer: { id: "skewed-clocks-user" }, clientAddress: "203.0.113.7" };
const AHEAD = 90_000;
const ON_TIME = 0;
const BEHIND = -5 * 60_000;

interface Instance {
  skewMs: number;
  limiter: RateLimiter;
  store: RedisRateLimitStore;
}

let keyPrefix: string;
let instances: Instance[];

function openInstance(skewMs: number): Instance {
  const store = new RedisRateLimitStore({ url: TEST_REDIS_URL, keyPrefix, timeoutMs: 2_000, logger });
  const instanceClock = () => Date.now() + skewMs;
  return { skewMs, store, limiter: new RateLimiter({ store, onStoreError: "closed", logger, now: instanceClock }) };
}

const instance = (skewMs: number): Instance => instances.find((i) => i.skewMs === skewMs)!;

/** One call on an instance: "allowed", or the RATE_LIMITED refusal. */
async function call(on: Instance): Promise<"allowed" | RateLimitedError> {
  try {
    await on.limiter.check(RULE, {}, CALLER);
    return "allowed";
  } catch (err) {
    if (err instanceof RateLimitedError) return err;
    throw err;
  }
}

async function callsOn(on: Instance, count: number): Promise<Array<"allowed" | RateLimitedError>> {
  const results: Array<"allowed" | RateLimitedError> = [];
  for (let i = 0; i < count; i++) results.push(await call(on));
  return results;
}

describe.skipIf(!redisAvailable)("Redis rate limits across instances whose clocks disagree", () => {
  beforeEach(() => {
    expect(RULE).toMatchObject({ max: 60, windowMs: 60_000 });
    keyPrefix = `test:rl:skew:${randomBytes(6).toString("hex")}:`;
    instances = [openInstance(AHEAD), openInstance(ON_TIME), openInstance(BEHIND)];
  });

  afterEach(async () => {
    await Promise.all(instances.map((i) => i.store.close()));
    const client = new Redis(TEST_REDIS_URL);
    try {
      const keys = await client.keys(`${keyPrefix}*`);
      if (keys.length > 0) await client.del(...keys);
    } finally {
      client.disconnect();
    }
  });

  it("a caller spreading calls over the three instances gets exactly the limit, not one per instance", async () => {
    // Behind first, ahead last: the order in which each instance's clock hid the calls before it.
    const results = [...(await callsOn(instance(BEHIND), 60)), ...(await callsOn(instance(ON_TIME), 60)), ...(await callsOn(instance(AHEAD), 60))];
    expect(results.filter((r) => r === "allowed")).toHaveLength(60);
    expect(results.slice(0, 60).every((r) => r === "allowed")).toBe(true);
  });

  it("after the limit is used on the instance ahead, every instance refuses, with a retry no longer than the window", async () => {
    expect((await callsOn(instance(AHEAD), 60)).every((r) => r === "allowed")).toBe(true);
    for (const skewMs of [AHEAD, ON_TIME, BEHIND]) {
      const refused = await call(instance(skewMs));
      expect(refused, `instance ${skewMs / 1000} s`).toBeInstanceOf(RateLimitedError);
      const { retryAfterSeconds } = (refused as RateLimitedError).extensions;
      expect(retryAfterSeconds, `instance ${skewMs / 1000} s`).toBeGreaterThanOrEqual(1);
      expect(retryAfterSeconds, `instance ${skewMs / 1000} s`).toBeLessThanOrEqual(60);
    }
  });
});
