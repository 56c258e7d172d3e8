/**
 * The rate-limit module, assembled from the configuration: the store (memory, or Redis when
 * REDIS_URL is set), the limiter, the gate the charge wrapper calls at step 4 for metered fields,
 * and the @rateLimit transformer for every other field that carries the directive.
 */
import type { GraphQLSchema } from "graphql";
import type { Logger } from "pino";
import { RateLimitedError } from "../errors/errors.js";
import type { CreditsRequest as RequestContext } from "../credits/credits-request.js";
import { MemoryRateLimitStore } from "./memory-store.js";
import { readRateLimitRules, rateLimitDirectiveTransformer } from "./rate-limit-directive.js";
import type { RateLimitGate } from "./rate-limit-gate.js";
import { defaultRule, type RateLimitRule } from "./rate-limit-rule.js";
import type { RateLimitStore } from "./rate-limit-store.js";
import { RateLimiter, type RateLimitCaller } from "./rate-limiter.js";
import { RedisRateLimitStore } from "./redis-store.js";

/** The settings rate limiting reads (this server passes its parsed configuration; a library host its own). */
export interface RateLimitConfig {
  readonly REDIS_URL?: string | undefined;
  readonly RATE_LIMIT_DEFAULT: { readonly max: number; readonly window: string; readonly windowMs: number };
  readonly RATE_LIMIT_ON_STORE_ERROR: "closed" | "open";
  readonly RATE_LIMIT_KEY_PREFIX: string;
  readonly RATE_LIMIT_STORE_TIMEOUT: number;
}

export interface CreateRateLimitingOptions {
  config: RateLimitConfig;
  logger: Logger;
  /**
   * The schema whose @rateLimit uses define the limits (the base schema, before any transformer).
   * Read and validated here, once: a bad @rateLimit is a startup error naming the field.
   */
  schema: GraphQLSchema;
  /** Milliseconds since the epoch; tests inject a fake clock (in-memory windows: Redis's are judged by Redis's clock). */
  now?: () => number;
  /** Overrides the store chosen from the configuration (tests). */
  store?: RateLimitStore;
  /** Called on every check the store failed to answer (counted apart from real limits). */
  onStoreFailure?: () => void;
}

export interface RateLimiting {
  /** Step 4 of the charge path: the field's own @rateLimit, else RATE_LIMIT_DEFAULT. */
  readonly gate: RateLimitGate;
  /** Wraps every field with @rateLimit and without @credits; apply after the credits transformer. */
  transform(schema: GraphQLSchema): GraphQLSchema;
  readonly store: RateLimitStore;
  /** Closes the store (quits Redis). */
  close(): Promise<void>;
}

function callerOf(context: unknown): RateLimitCaller {
  const ctx = context as Partial<RequestContext> | undefined;
  return { viewer: ctx?.viewer, clientAddress: ctx?.clientAddress ?? "unknown", requestId: ctx?.requestId };
}

export function createRateLimiting(options: CreateRateLimitingOptions): RateLimiting {
  const { config, logger } = options;
  const rules: ReadonlyMap<string, RateLimitRule> = readRateLimitRules(options.schema);
  const defaults = new Map<string, RateLimitRule>();
  const ruleOfMetered = (coordinate: string): RateLimitRule => {
    const own = rules.get(coordinate);
    if (own) return own;
    let rule = defaults.get(coordinate);
    if (!rule) defaults.set(coordinate, (rule = defaultRule(coordinate, config.RATE_LIMIT_DEFAULT)));
    return rule;
  };

  const store =
    options.store ??
    (config.REDIS_URL
      ? new RedisRateLimitStore({
          url: config.REDIS_URL,
          keyPrefix: config.RATE_LIMIT_KEY_PREFIX,
          timeoutMs: config.RATE_LIMIT_STORE_TIMEOUT,
          logger,
        })
      : new MemoryRateLimitStore());
  logger.info(
    { store: store.kind, default: `${config.RATE_LIMIT_DEFAULT.max}/${config.RATE_LIMIT_DEFAULT.window}`, onStoreError: config.RATE_LIMIT_ON_STORE_ERROR },
    "rate limits ready",
  );
  const limiter = new RateLimiter({
    store,
    onStoreError: config.RATE_LIMIT_ON_STORE_ERROR,
    logger,
    now: options.now,
    onStoreFailure: options.onStoreFailure,
  });

  return {
    gate: {
      // The charge wrapper logs and counts its own refusals (the charge observer).
      checkMetered: (field, args, ctx) => limiter.check(ruleOfMetered(field.coordinate), args, callerOf(ctx)),
      checkMeteredCalls: (calls, ctx) =>
        limiter.checkAll(
          calls.map((call) => ({ rule: ruleOfMetered(call.field.coordinate), args: call.args })),
          callerOf(ctx),
        ),
    },
    transform: rateLimitDirectiveTransformer({
      check: async (rule, args, context) => {
        const caller = callerOf(context);
        try {
          await limiter.check(rule, args, caller);
        } catch (err) {
          if (err instanceof RateLimitedError) {
            const ctx = context as Partial<RequestContext> | undefined;
            (ctx?.logger ?? logger).info({ operation: rule.coordinate, code: err.code, actorId: caller.viewer?.id }, "refused: rate limited");
          }
          throw err;
        }
      },
    }),
    store,
    close: () => store.close(),
  };
}
