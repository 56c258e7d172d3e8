/**
 * One field's rate limit, read and validated once at start: from its @rateLimit directive, or the
 * configured default (RATE_LIMIT_DEFAULT) for a metered field without one. The meaning is
 * graphql-rate-limit's: at most `max` calls per caller within any sliding `window`, a separate
 * counter per value of the `identityArgs`, and a call counting as the length of its
 * `arrayLengthField` list (at least 1) when one is named.
 */
export interface RateLimitRule {
  /** Schema coordinate of the limited field, e.g. "Mutation.runAiTask"; also the counter's name. */
  readonly coordinate: string;
  readonly max: number;
  /** The window as written ("1m"), for messages. */
  readonly window: string;
  readonly windowMs: number;
  /** The directive's own RATE_LIMITED message, when it gives one. */
  readonly message: string | undefined;
  /** Argument paths ("subscriptionId", "input.domain") whose values make separate counters. */
  readonly identityArgs: readonly string[];
  /** Argument path of a list: a call counts as that many calls. */
  readonly arrayLengthField: string | undefined;
  readonly source: "directive" | "default";
}

/** graphql-rate-limit's defaults for a @rateLimit that leaves out `max` or `window`. */
export const LIBRARY_DEFAULT_MAX = 5;
export const LIBRARY_DEFAULT_WINDOW = "1m";

/** The configured default limit (RATE_LIMIT_DEFAULT) applied to a metered field without its own @rateLimit. */
export function defaultRule(coordinate: string, limit: { max: number; window: string; windowMs: number }): RateLimitRule {
  return {
    coordinate,
    max: limit.max,
    window: limit.window,
    windowMs: limit.windowMs,
    message: undefined,
    identityArgs: [],
    arrayLengthField: undefined,
    source: "default",
  };
}
