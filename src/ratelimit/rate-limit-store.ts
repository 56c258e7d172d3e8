/**
 * Where rate-limit counters live (DESIGN.md, convention 6: an interface with real implementations).
 * `hit` is the whole check-and-record in one atomic step: under any concurrency, on one instance or
 * many sharing the store, no more than `max` calls are recorded within a window. That is what
 * graphql-rate-limit's own stores cannot promise (they read the timestamps, then write them back, so
 * simultaneous calls all see the same old list and all pass).
 *
 * The counter is graphql-rate-limit's sliding log: the timestamps of the calls that ran, each alive
 * for `windowMs`; a call of cost n may run when (alive timestamps + n) ≤ max. A store serving one
 * process judges windows by the caller's `now` (so an injected clock slides them and tests need no
 * sleeps); a store shared by instances judges them by one clock of its own (Redis's TIME), since
 * instances' clocks disagree and each would misjudge the others' calls.
 */
export interface RateLimitHit {
  /** The counter: caller and field identity (and the identityArgs' values). */
  readonly key: string;
  readonly max: number;
  readonly windowMs: number;
  /** How many calls this one counts as (arrayLengthField), at least 1. */
  readonly cost: number;
  /** The caller's current time in milliseconds since the epoch (a shared store reads its own clock instead). */
  readonly now: number;
}

export type RateLimitVerdict =
  | {
      readonly allowed: true;
      /** Calls in the window, this one included. */
      readonly used: number;
      /** Takes this call's record back out, for a call refused after it was counted (see RateLimitGate). */
      readonly release: () => Promise<void>;
    }
  | { readonly allowed: false; readonly used: number; /** When a call of the same cost could run, if no other call runs before. */ readonly retryAfterMs: number };

/**
 * A hit the store did not answer (a timeout, a lost connection). It may still have been recorded, or
 * be recorded later: a command sent to Redis runs when it arrives, whether or not anyone still waits
 * for its answer. `withdraw` makes sure such a late record counts nothing (for a call that did not run);
 * it never rejects.
 */
export class UnansweredHitError extends Error {
  constructor(
    cause: unknown,
    readonly withdraw: () => Promise<void>,
  ) {
    super(`rate limit store did not answer: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = "UnansweredHitError";
  }
}

export interface RateLimitStore {
  readonly kind: "memory" | "redis";
  /**
   * Atomically: forgets the timestamps older than the window, then either records `cost` new
   * timestamps at the current time (`now`, or the shared store's own clock) (allowed) or records
   * nothing (refused). A refused call is not counted (graphql-rate-limit's `uncountRejected`): it
   * did not run, and counting it would let a flood of refused calls grow the log without bound.
   * Rejects when the store cannot answer; with an UnansweredHitError when the hit may still be
   * recorded without an answer.
   */
  hit(hit: RateLimitHit): Promise<RateLimitVerdict>;
  /** Releases connections and timers. */
  close(): Promise<void>;
  /** Resolves when the store answers, rejects when it does not (GET /health); absent for in-process stores. */
  ping?(): Promise<void>;
}

/**
 * How long until a refused call of `cost` could run: until the oldest timestamps that stand in its
 * way leave the window. A cost above `max` can never run: a full window is the honest answer.
 */
export function retryAfterMs(alive: readonly number[], hit: Pick<RateLimitHit, "max" | "windowMs" | "cost" | "now">): number {
  if (hit.cost > hit.max) return hit.windowMs;
  // Sorted, in case the clock stepped back between calls.
  const oldestFirst = [...alive].sort((a, b) => a - b);
  const blocking = oldestFirst[oldestFirst.length + hit.cost - hit.max - 1];
  return Math.max(1, blocking + hit.windowMs - hit.now);
}
