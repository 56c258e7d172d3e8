/**
 * The library's rate limits (DESIGN.md, "Rate limits"): `@rateLimit` with graphql-rate-limit's
 * meaning, per caller, and a default limit on every `@credits` field without its own, the same as
 * the server's RATE_LIMIT_DEFAULT. In memory by default, in Redis when the host names one (shared by
 * every instance). The caller is read from the credits core's per-request state, so a host's
 * context need not look like this server's.
 */
import type { GraphQLSchema } from "graphql";
import type { Logger } from "pino";
import { RateLimitedError } from "../errors/errors.js";
import type { CreditsRequest, RequestOf } from "../credits/credits-request.js";
import { MemoryRateLimitStore } from "../ratelimit/memory-store.js";
import { rateLimitDirectiveTransformer, readRateLimitRules } from "../ratelimit/rate-limit-directive.js";
import type { RateLimitGate } from "../ratelimit/rate-limit-gate.js";
import { defaultRule, type RateLimitRule } from "../ratelimit/rate-limit-rule.js";
import type { RateLimitStore } from "../ratelimit/rate-limit-store.js";
import { RateLimiter, type RateLimitCaller, type RateLimitedCall } from "../ratelimit/rate-limiter.js";
import { RedisRateLimitStore } from "../ratelimit/redis-store.js";
import { parseDurationMs } from "../util/duration.js";

/** The server's RATE_LIMIT_DEFAULT when unset (src/config/config.ts): every metered field gets it unless told otherwise. */
export const DEFAULT_RATE_LIMIT = "60/1m";

export interface RateLimitSettings {
  /** The limit of a `@credits` field without its own `@rateLimit`, per caller: "60/1m" unless given; `false` for none. */
  default?: string | false;
  /** Count in Redis, shared by every instance of the host (else in this process's memory). */
  redisUrl?: string;
  /** Prefix of the Redis keys ("credits:rl:"). */
  keyPrefix?: string;
  /** When the store does not answer: refuse the call ("closed", the default) or let it run unlimited ("open"). */
  onStoreError?: "closed" | "open";
}

export interface LibraryRateLimits {
  /** Step 4 of the charge path, for metered fields: their own @rateLimit, else the default. */
  readonly gate: RateLimitGate;
  /** Reads the schema's @rateLimit uses (a bad one throws, naming the field) and limits the fields without @credits. */
  transform(schema: GraphQLSchema): GraphQLSchema;
  /** Re-reads the rules of a schema before the credits transformer runs (metered fields' limits). */
  readRules(schema: GraphQLSchema): void;
  close(): Promise<void>;
}

/** "60/1m" → the rule's numbers; throws naming the option when it is not that shape. */
export function parseLimit(rule: string): { max: number; window: string; windowMs: number } {
  const match = /^\s*(\d+)\s*\/\s*(\S+)\s*$/.exec(rule);
  const windowMs = match ? parseDurationMs(match[2]) : undefined;
  if (!match || !windowMs || Number(match[1]) < 1) {
    throw new Error(`createCredits: rateLimit.default "${rule}" is not "<max>/<window>", e.g. "60/1m"`);
  }
  return { max: Number(match[1]), window: match[2], windowMs };
}

function callerOf(ctx: CreditsRequest): RateLimitCaller {
  return { viewer: ctx.viewer, clientAddress: ctx.clientAddress ?? "unknown", requestId: ctx.requestId };
}

export function createLibraryRateLimits(
  settings: RateLimitSettings,
  options: { logger: Logger; requestOf: RequestOf; now?: () => number },
): LibraryRateLimits {
  const { logger, requestOf } = options;
  const limit = settings.default === false ? undefined : parseLimit(settings.default ?? DEFAULT_RATE_LIMIT);
  const store: RateLimitStore = settings.redisUrl
    ? new RedisRateLimitStore({ url: settings.redisUrl, keyPrefix: settings.keyPrefix ?? "credits:rl:", timeoutMs: 500, logger })
    : new MemoryRateLimitStore();
  const limiter = new RateLimiter({ store, onStoreError: settings.onStoreError ?? "closed", logger, now: options.now });
  logger.info({ store: store.kind, default: limit ? `${limit.max}/${limit.window}` : "none" }, "rate limits ready");

  let rules: ReadonlyMap<string, RateLimitRule> = new Map();
  const defaults = new Map<string, RateLimitRule>();
  const ruleOf = (coordinate: string): RateLimitRule | undefined => {
    const own = rules.get(coordinate);
    if (own || !limit) return own;
    let rule = defaults.get(coordinate);
    if (!rule) defaults.set(coordinate, (rule = defaultRule(coordinate, limit)));
    return rule;
  };

  const directiveTransform = rateLimitDirectiveTransformer({
    check: async (rule, args, context) => {
      const ctx = await requestOf(context);
      try {
        await limiter.check(rule, args, callerOf(ctx));
      } catch (err) {
        if (err instanceof RateLimitedError) ctx.logger.info({ operation: rule.coordinate, code: err.code, actorId: ctx.viewer?.id }, "refused: rate limited");
        throw err;
      }
    },
  });

  return {
    gate: {
      checkMetered: async (field, args, ctx) => {
        const rule = ruleOf(field.coordinate);
        return rule ? limiter.check(rule, args, callerOf(ctx)) : undefined;
      },
      // The calls of one operation that share a counter are one hit of their summed cost; calls of
      // fields without a rule pass uncounted.
      checkMeteredCalls: async (calls, ctx) => {
        const ruled = calls.map((call) => ({ rule: ruleOf(call.field.coordinate), args: call.args }));
        const checked = await limiter.checkAll(
          ruled.filter((call): call is RateLimitedCall => call.rule !== undefined),
          callerOf(ctx),
        );
        let next = 0;
        return ruled.map((call) => (call.rule ? checked[next++] : { status: "fulfilled" as const, value: undefined }));
      },
    },
    readRules(schema) {
      rules = readRateLimitRules(schema);
    },
    transform: directiveTransform,
    close: () => store.close(),
  };
}
