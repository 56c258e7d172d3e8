/**
 * The Redis rate-limit store when Redis is slow or the connection dies silently (an outside audit):
 * - calls refused as "Rate limiter unavailable" while Redis was slow still used up the caller's
 *   limit, because Redis ran their hits when they arrived (1 of 5 calls allowed afterwards);
 * - a connection whose flow was lost (no RST, no FIN) was never replaced: every call was refused for
 *   minutes, though a new connection worked.
 * A real Redis, reached through a proxy that delays bytes (delaying-proxy.ts) or drops them
 * (test/helpers/silent-proxy.ts).
 */
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { RateLimitedError } from "../../src/errors/errors.js";
import { createLogger } from "../../src/observability/logger.js";
import { defaultRule } from "../../src/ratelimit/rate-limit-rule.js";
import { LIMITER_UNAVAILABLE_MESSAGE, RateLimiter, type RateLimitCaller, type StoreFailureMode } from "../../src/ratelimit/rate-limiter.js";
import { RedisRateLimitStore } from "../../src/ratelimit/redis-store.js";
import { captureLogLines } from "../helpers/log-lines.js";
import { redisAvailable, TEST_REDIS_URL } from "../helpers/services.js";
import { startSilentProxy, type SilentProxy } from "../helpers/silent-proxy.js";
import { startDelayingProxy, type DelayingProxy } from "./delaying-proxy.js";

const RULE = defaultRule("Query.searchLeads", { max: 5, window: "10s", windowMs: 10_000 });
const CALLER: RateLimitCaller = { viewer: { id: "slow-redis-user" }, clientAddress: "203.0.113.9" };
const target = { host: new URL(TEST_REDIS_URL).hostname, port: Number(new URL(TEST_REDIS_URL).port || 6379) };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let keyPrefix: string;
let stores: RedisRateLimitStore[];
let direct: Redis;

function limiterVia(url: string, onStoreError: StoreFailureMode, timeoutMs: number, logger = createLogger("silent")) {
  const store = new RedisRateLimitStore({ url, keyPrefix, timeoutMs, logger });
  stores.push(store);
  return { store, limiter: new RateLimiter({ store, onStoreError, logger }) };
}

async function call(limiter: RateLimiter): Promise<"allowed" | RateLimitedError> {
  try {
    await limiter.check(RULE, {}, CALLER);
    return "allowed";
  } catch (err) {
    if (err instanceof RateLimitedError) return err;
    throw err;
  }
}

async function callsOf(limiter: RateLimiter, count: number): Promise<Array<"allowed" | string>> {
  const results: Array<"allowed" | string> = [];
  for (let i = 0; i < count; i++) {
    const result = await call(limiter);
    results.push(result === "allowed" ? result : result.message);
  }
  return results;
}

/** Members of the caller's counter in Redis: the calls it counts. */
async function counted(): Promise<number> {
  const keys = await direct.keys(`${keyPrefix}*`);
  return keys.length === 0 ? 0 : direct.zcard(keys[0]);
}

describe.skipIf(!redisAvailable)("Redis rate-limit store: slow Redis and dead connections", () => {
  beforeEach(() => {
    keyPrefix = `test:rl:fail:${randomBytes(6).toString("hex")}:`;
    stores = [];
    direct = new Redis(TEST_REDIS_URL);
  });

  afterEach(async () => {
    await Promise.all(stores.map((s) => s.close()));
    const keys = await direct.keys(`${keyPrefix}*`);
    if (keys.length > 0) await direct.del(...keys);
    direct.disconnect();
  });

  describe("while Redis is slower than RATE_LIMIT_STORE_TIMEOUT", () => {
    let proxy: DelayingProxy;
    beforeEach(async () => {
      proxy = await startDelayingProxy(target);
    });
    afterEach(async () => {
      await proxy.close();
    });

    it("calls refused as unavailable (fail-closed) count nothing once Redis answers again", async () => {
      const { store, limiter } = limiterVia(proxy.via(TEST_REDIS_URL), "closed", 500);
      await store.ping();
      proxy.setDelay(400); // 800 ms round trip, over the 500 ms timeout
      expect(await callsOf(limiter, 3)).toEqual(Array(3).fill(LIMITER_UNAVAILABLE_MESSAGE));
      proxy.setDelay(0);
      // Sent after the late hits on the same connection: when it answers, they have all run.
      await store.ping();
      expect(await counted()).toBe(0);
      const after = await callsOf(limiter, 6);
      expect(after.slice(0, 5)).toEqual(Array(5).fill("allowed"));
      expect(after[5]).toMatch(/^Too many calls to Query\.searchLeads/);
    });

    it("calls let through unlimited (fail-open) ran, so their late records count", async () => {
      const { store, limiter } = limiterVia(proxy.via(TEST_REDIS_URL), "open", 500);
      await store.ping();
      proxy.setDelay(400);
      expect(await callsOf(limiter, 3)).toEqual(Array(3).fill("allowed"));
      proxy.setDelay(0);
      await store.ping();
      expect(await counted()).toBe(3);
      const after = await callsOf(limiter, 3);
      expect(after.slice(0, 2)).toEqual(["allowed", "allowed"]);
      expect(after[2]).toMatch(/^Too many calls to Query\.searchLeads/);
    });
  });

  describe("after a partition that lost the connection's bytes", () => {
    let proxy: SilentProxy;
    beforeEach(async () => {
      proxy = await startSilentProxy(target);
    });
    afterEach(async () => {
      await proxy.close();
    });

    it("the silent connection is replaced, logged once, and calls pass again within seconds", async () => {
      const log = captureLogLines();
      const { store, limiter } = limiterVia(proxy.via(TEST_REDIS_URL), "closed", 300, createLogger("info", log.destination));
      expect(await call(limiter)).toBe("allowed");
      proxy.partition();
      // Their bytes are lost: after heal, this connection's replies never match its commands again.
      expect(await callsOf(limiter, 3)).toEqual(Array(3).fill(LIMITER_UNAVAILABLE_MESSAGE));
      proxy.heal();
      const healedAt = Date.now();
      let passedAfterMs: number | undefined;
      while (Date.now() - healedAt < 12_000) {
        if ((await call(limiter)) === "allowed") {
          passedAfterMs = Date.now() - healedAt;
          break;
        }
        await sleep(200);
      }
      expect(passedAfterMs, "a metered call passes again").toBeDefined();
      expect(passedAfterMs!).toBeLessThan(8_000);
      await expect(store.ping(), "GET /health sees the store up").resolves.toBeUndefined();
      expect(proxy.connections).toBe(2);
      expect(log.lines.filter((l) => l.event === "rate_limit.store_reconnect")).toHaveLength(1);
    }, 30_000);
  });
});
