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
 * A hit that times out is refused by the limiter (or let through, RATE_LIMIT_ON_STORE_ERROR=open),
 * but Redis still runs it when it arrives: a slow or paused Redis recorded calls that never ran, and
 * the caller found its window used up afterwards (an outside audit: 1 of 5 calls allowed after three
 * refused ones). So its rejection carries `withdraw`, a ZREM of exactly the members it would add,
 * queued on the same connection: Redis runs one connection's commands in order, so the ZREM runs
 * after the hit if the hit ever runs, and removes nothing if it never does. ioredis drops the late
 * answer itself (the command is settled by its timeout), and nothing here reads it.
 *
 * A connection can die silently (a NAT or load-balancer flow lost: no RST, no FIN), or be left out
 * of step with its replies by bytes lost in a partition; ioredis then waits on it forever and every
 * call is refused (an audit: still refused after 3 min 40 s, though a new connection worked). When
 * commands have been timing out with no answer at all for SILENT_CONNECTION_MS, the connection is
 * dropped and ioredis reconnects (event rate_limit.store_reconnect, logged once per replacement).
 * TCP keep-alive probes keep an idle flow alive in NAT tables meanwhile; they cannot detect a dead
 * one in time (the kernel gives up after minutes).
 *
 * ioredis 6.0.0's defineCommand hangs when the script is not yet cached on the server (its NOSCRIPT
 * fallback never answers), so the script is sent with EVALSHA and, on NOSCRIPT, once with EVAL.
 */
import { createHash, randomUUID } from "node:crypto";
import { Redis, ReplyError } from "ioredis";
import type { Logger } from "pino";
import { UnansweredHitError, type RateLimitHit, type RateLimitStore, type RateLimitVerdict } from "./rate-limit-store.js";

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

/** How long commands may go unanswered (while they time out) before the connection is replaced. */
const SILENT_CONNECTION_MS = 5_000;
/** TCP keep-alive on an idle connection, so that NAT and load-balancer tables keep its flow. */
const KEEP_ALIVE_MS = 30_000;

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
  private readonly log: Logger;
  /** Unanswered commands for this long (at least two timeouts) mean the connection is dead. */
  private readonly silentConnectionMs: number;
  private connectionFailing = false;
  /** When the current connection last answered anything (or was opened). */
  private lastAnswerAt = Date.now();

  constructor(options: RedisRateLimitStoreOptions) {
    this.keyPrefix = options.keyPrefix;
    this.windowClock = options.windowClock ?? "redis";
    this.silentConnectionMs = Math.max(SILENT_CONNECTION_MS, 2 * options.timeoutMs);
    this.client = new Redis(options.url, {
      // A call waits for Redis at most timeoutMs, and is not retried over more than one reconnect:
      // during an outage the limiter must answer (open or closed) quickly, not queue requests.
      commandTimeout: options.timeoutMs,
      connectTimeout: Math.max(options.timeoutMs, 1_000),
      maxRetriesPerRequest: 1,
      keepAlive: KEEP_ALIVE_MS,
      // A replaced connection that does not answer its FIN is not waited for longer than a command.
      disconnectTimeout: options.timeoutMs,
    });
    const log = (this.log = options.logger.child({ component: "rate-limit-store", store: "redis" }));
    // ioredis reports every failed reconnect; one line when the connection starts failing and one
    // when it is back keep an outage readable.
    this.client.on("error", (err: Error) => {
      if (this.connectionFailing) return;
      this.connectionFailing = true;
      log.error({ err }, "rate limit store: Redis connection failing; reconnecting in the background");
    });
    this.client.on("ready", () => {
      this.lastAnswerAt = Date.now();
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
    const members = Array.from({ length: hit.cost }, (_, i) => `${member}:${i + 1}`);
    let reply: unknown;
    try {
      reply = await this.answer(this.client.evalsha(HIT_SCRIPT_SHA, ...args));
    } catch (err) {
      if (!(err instanceof ReplyError && (err as Error).message.startsWith("NOSCRIPT"))) throw this.unanswered(err, key, members);
      try {
        reply = await this.answer(this.client.eval(HIT_SCRIPT, ...args));
      } catch (evalErr) {
        throw this.unanswered(evalErr, key, members);
      }
    }
    const [allowed, used, retryAfterMs] = reply as [number, number, number];
    if (allowed !== 1) return { allowed: false, used, retryAfterMs };
    return { allowed: true, used, release: async () => void (await this.answer(this.client.zrem(key, ...members))) };
  }

  /** One PING, within the command timeout: whether Redis answers right now. */
  async ping(): Promise<void> {
    await this.answer(this.client.ping());
  }

  async close(): Promise<void> {
    if (this.client.status === "ready") {
      await this.client.quit().catch(() => this.client.disconnect());
    } else {
      this.client.disconnect();
    }
  }

  /** A Redis error reply is an answer: the hit did not run. Anything else may have left it to run later. */
  private unanswered(err: unknown, key: string, members: string[]): unknown {
    if (err instanceof ReplyError) return err;
    return new UnansweredHitError(err, async () => {
      await this.client.zrem(key, ...members).catch(() => undefined);
    });
  }

  /** Every command goes through here, so that a connection that stopped answering is noticed. */
  private async answer<T>(command: Promise<T>): Promise<T> {
    try {
      const reply = await command;
      this.lastAnswerAt = Date.now();
      return reply;
    } catch (err) {
      if (err instanceof ReplyError) this.lastAnswerAt = Date.now();
      else this.replaceIfSilent();
      throw err;
    }
  }

  /**
   * Drops the connection when nothing has answered for silentConnectionMs although commands were
   * sent (they time out); ioredis reconnects at once. Only a connection that is up or handshaking
   * is replaced: one being (re)opened is ioredis's own business, bounded by connectTimeout.
   */
  private replaceIfSilent(): void {
    const status = this.client.status;
    if (status !== "ready" && status !== "connect") return;
    const silentMs = Date.now() - this.lastAnswerAt;
    if (silentMs < this.silentConnectionMs) return;
    // The new connection gets a full period of its own before it is judged.
    this.lastAnswerAt = Date.now();
    this.log.warn({ event: "rate_limit.store_reconnect", silentMs, status }, "rate limit store: Redis connection silent; replacing it");
    this.client.disconnect(true);
  }
}
