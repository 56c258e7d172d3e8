/** Durations are parsed by src/util/duration.ts (shared with the credits core, which imports no configuration). */
export { parseDurationMs } from "../util/duration.js";

/**
 * The longest delay a Node timer takes (2^31−1 ms, about 24.8 days). Beyond it setTimeout warns
 * (TimeoutOverflowWarning) and fires after 1 ms: a store timeout of 30d timed every Redis check out
 * at once, a push interval of 30d stopped coalescing. Every duration that drives a timer stays under it.
 */
export const MAX_TIMER_MS = 2_147_483_647;

/**
 * The longest duration that is only compared in the database or in date arithmetic (a key's TTL, a
 * hold's timeout, an alert window): 100 years, as createCredits allows (src/library/option-checks.ts),
 * far beyond any use and well inside a Date's range.
 */
export const MAX_DURATION_DAYS = 36_525;
export const MAX_DURATION_MS = MAX_DURATION_DAYS * 86_400_000;
