/**
 * The Redis rate-limit store (REDIS_URL), shared by every server instance. Exact under concurrency
 * because the whole check-and-record is one Lua script, which Redis runs atomically: no other
 * command touches the counter between the count and the write, whichever instance sent it.
 *
 * Each counter is a sorted set of the calls that ran (score = timestamp in ms, member unique per
 * call), so the sliding window is graphql-rate-limit's; a refused call adds nothing, so a set never
 * holds more than `max` members, and it expires with its newest call.
 *
 * The timestamps come from Redis's own clock (TIME, read inside the script), not from the instance
 * that sent the call: instances sharing Redis must judge every window by one clock. Stamped with
 * each instance's Date.now(), an instance whose clock ran ahead trimmed the others' calls as too
 * old and the calls of one running behind were out of everyone else's windows (an outside audit
 * passed 180 calls against 60/1m over three skewed instances), and retry times came out longer
 * than the window. Scripts may read TIME and then write because Redis (5 and later) replicates a
 * script's effects, not the script.
 *
 * ioredis 6.0.0's defineCommand hangs when the script is not yet cached on the server (its NOSCRIPT
 * fallback never answers), so the script is sent with EVALSHA and, on NOSCRIPT, once with EVAL.
 */
import { createHash, randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import type { Logger } from "pino";
import type { RateLimitHit, RateLimitStore, RateLimitVerdict } from "./rate-limit-store.js";

// KEYS[1] counter; ARGV: now (ms, or "" for Redis's own clock), window (ms), max, cost, unique
// member prefix. Returns {allowed 0|1, used, retryAfterMs}.
const HIT_SCRIPT = `
local key = KEYS[1]
local now
if ARGV[1] == '' then
  local time = redis.call('TIME')
  now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
else
  now = tonumber(ARGV[1])
end
local window = tonumber(ARGV[2])
local max = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
-- graphql-rate-limit keeps a timestamp t while t + window > now
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local used = redis.call('ZCARD', key)
if used + cost > max then
  if cost > max then return {0, used, window} end
  local rank = used + cost - max - 1
  local blocking = redis.call('ZRANGE', key, rank, rank, 'WITHSCORES')
  return {0, used, math.max(1, tonumber(blocking[2]) + window - now)}
end
for i = 1, cost do
  redis.call('ZADD', key, now, ARGV[5] .. ':' .. i)
end
local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', key, math.max(1, tonumber(newest[2]) + window - now))
return {1, used + cost, 0}
`;
const HIT_SCRIPT_SHA = createHash("sha1").update(HIT_SCRIPT).digest("hex");

export interface RedisRateLimitStoreOptions {
  url: string;
  /** Prepended to every key (RATE_LIMIT_KEY_PREFIX). */
  keyPrefix: string;
  /** Longest wait for one answer, connecting included (RATE_LIMIT_STORE_TIMEOUT). */
  timeoutMs: number;
  logger: Logger;
  /**
   * Whose clock judges the windows. "redis" (the default, and the only right one in production):
   * Redis's TIME, one clock for every instance sharing it. "caller": each hit's `now`, one process's
   * clock, so tests can slide windows on an injected clock without sleeping; instances whose clocks
   * disagree would misjudge each other's calls with it.
   */
  windowClock?: "redis" | "caller";
}

export class RedisRateLimitStore implements RateLimitStore {
  readonly kind = "redis" as const;
  private readonly client: Redis;
  private readonly keyPrefix: string;
  private readonly windowClock: "redis" | "caller";
  private connectionFailing = false;

  constructor(options: RedisRateLimitStoreOptions) {
    this.keyPrefix = options.keyPrefix;
    this.windowClock = options.windowClock ?? "redis";
    this.client = new Redis(options.url, {
      // A call waits for Redis at most timeoutMs, and is not retried over more than one reconnect:
      // during an outage the limiter must answer (open or closed) quickly, not queue requests.
      commandTimeout: options.timeoutMs,
      connectTimeout: Math.max(options.timeoutMs, 1_000),
      maxRetriesPerRequest: 1,
    });
    const log = options.logger.child({ component: "rate-limit-store", store: "redis" });
    // ioredis reports every failed reconnect; one line when the connection starts failing and one
    // when it is back keep an outage readable.
    this.client.on("error", (err: Error) => {
      if (this.connectionFailing) return;
      this.connectionFailing = true;
      log.error({ err }, "rate limit store: Redis connection failing; reconnecting in the background");
    });
    this.client.on("ready", () => {
      if (!this.connectionFailing) return;
      this.connectionFailing = false;
      log.info("rate limit store: Redis connection restored");
    });
  }

  async hit(hit: RateLimitHit): Promise<RateLimitVerdict> {
    const member = randomUUID();
    const key = this.keyPrefix + hit.key;
    // The caller's `now` is ignored on Redis's clock: the script reads TIME instead.
    const now = this.windowClock === "caller" ? hit.now : "";
    const args = [1, key, now, hit.windowMs, hit.max, hit.cost, member] as const;
    let reply: unknown;
    try {
      reply = await this.client.evalsha(HIT_SCRIPT_SHA, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith("NOSCRIPT")) throw err;
      reply = await this.client.eval(HIT_SCRIPT, ...args);
    }
    const [allowed, used, retryAfterMs] = reply as [number, number, number];
    if (allowed !== 1) return { allowed: false, used, retryAfterMs };
    const members = Array.from({ length: hit.cost }, (_, i) => `${member}:${i + 1}`);
    return { allowed: true, used, release: async () => void (await this.client.zrem(key, ...members)) };
  }

  /** One PING, within the command timeout: whether Redis answers right now. */
  async ping(): Promise<void> {
    await this.client.ping();
  }

  async close(): Promise<void> {
    if (this.client.status === "ready") {
      await this.client.quit().catch(() => this.client.disconnect());
    } else {
      this.client.disconnect();
    }
  }
}
