/**
 * Checks one call of a rate-limited field: who is calling, which counter, how much the call counts,
 * then one atomic `hit` on the store; RATE_LIMITED (429, retryAfterSeconds) when over the limit.
 *
 * Why not graphql-rate-limit's getGraphQLRateLimiter with a custom Store: its limiter calls
 * store.getForIdentity, decides "over the limit" itself from that list, then calls
 * store.setForIdentity with the list it computed. The decision is made between two store calls,
 * and the store is never told `max` or the call's cost, so no store can make check-and-record one
 * step behind it; concurrent calls all read the same list and all pass (measured: 50 of 50 against
 * max 10 in one process). It also reads the wall clock itself (Date.now), so windows cannot be
 * tested without sleeping. So the library supplies the field identity (getFieldIdentity: the
 * counter's name from the field and its identityArgs' values, as its directive builds it) and its
 * meaning (sliding window of call timestamps, max/window defaults, arrayLengthField cost); the
 * decision is the store's atomic `hit`, driven by an injected clock in one process (the Redis
 * store shared by instances reads Redis's clock instead: see redis-store.ts).
 *
 * When the store fails (Redis down or slow), RATE_LIMIT_ON_STORE_ERROR decides: "closed" refuses
 * the call with RATE_LIMITED, retryAfterSeconds 1 and a message saying the limiter is unavailable
 * (nothing is charged: this runs before the debit); "open" lets it run unlimited. Either way the
 * outage is logged (one line when it starts, then at most one every OUTAGE_LOG_EVERY_MS). A hit
 * the store did not answer may still be recorded later (Redis runs it when it arrives): a refused
 * call withdraws it, since it did not run; a call let through keeps it, since it did run and its late
 * record is the truth (its pass withdraws it if the call is refused later, before it runs).
 *
 * The calls of one operation that share a counter (same field, identityArgs' values and caller: the
 * aliases of one field) are checked as one hit of their summed cost (`checkAll`). They run all or
 * none, so the retry time must be when that many slots are free, not one; checked one by one, each
 * was told when one slot frees, and the operation was refused again then. Operations of one call
 * (the usual case) go through `check`, with no grouping.
 */
import { createHash } from "node:crypto";
import { getFieldIdentity } from "graphql-rate-limit";
import type { Logger } from "pino";
import { RateLimitedError } from "../errors/errors.js";
import type { RateLimitRule } from "./rate-limit-rule.js";
import { UnansweredHitError, type RateLimitStore } from "./rate-limit-store.js";

/** A counted call; `release` takes its record back (a metered call refused by authorization after it was counted). */
export interface RateLimitPass {
  release(): Promise<void>;
}

const NOTHING_TO_RELEASE: RateLimitPass = { release: async () => undefined };

export type StoreFailureMode = "open" | "closed";

/** What the limiter needs to know about the caller (a subset of the request context). */
export interface RateLimitCaller {
  readonly viewer?: { readonly id: string } | undefined;
  readonly clientAddress: string;
  readonly requestId?: string;
}

export interface RateLimiterOptions {
  store: RateLimitStore;
  onStoreError: StoreFailureMode;
  logger: Logger;
  /** Milliseconds since the epoch; tests inject a fake clock (the Redis store judges by Redis's clock, not this one). */
  now?: () => number;
  /** Called on every check the store failed to answer (a metric apart from real limits). */
  onStoreFailure?: () => void;
}

/** One call of a rate-limited field, with its coerced arguments. */
export interface RateLimitedCall {
  readonly rule: RateLimitRule;
  readonly args: Record<string, unknown>;
}

/** The calls of one operation that count against one counter, in the operation's order. */
interface CounterGroup {
  readonly rule: RateLimitRule;
  readonly key: string;
  readonly indexes: number[];
  readonly costs: number[];
}

export const LIMITER_UNAVAILABLE_MESSAGE = "Rate limiter unavailable: try again in a second";
const OUTAGE_LOG_EVERY_MS = 10_000;
/** Counter names longer than this (long identityArgs values) are hashed, so keys stay small. */
const MAX_PLAIN_KEY_LENGTH = 200;

/**
 * The caller's identity: the token subject, else the client address. Prefixed so that no token
 * subject can name another caller's address counter.
 */
export function callerIdentity(caller: RateLimitCaller): string {
  return caller.viewer ? `user:${caller.viewer.id}` : `ip:${caller.clientAddress}`;
}

/** How many calls this one counts as: the length of its arrayLengthField list, at least 1 (graphql-rate-limit's rule). */
export function callCost(rule: RateLimitRule, args: Record<string, unknown>): number {
  if (!rule.arrayLengthField) return 1;
  let value: unknown = args;
  for (const segment of rule.arrayLengthField.split(".")) {
    value = value !== null && typeof value === "object" ? (value as Record<string, unknown>)[segment] : undefined;
  }
  return Array.isArray(value) && value.length > 0 ? value.length : 1;
}

/** The store key of one counter: caller, field and identityArgs' values. */
export function counterKey(rule: RateLimitRule, args: Record<string, unknown>, caller: RateLimitCaller): string {
  const key = `${callerIdentity(caller)}|${getFieldIdentity(rule.coordinate, rule.identityArgs, args)}`;
  return key.length <= MAX_PLAIN_KEY_LENGTH ? key : `sha256:${createHash("sha256").update(key).digest("hex")}`;
}

export class RateLimiter {
  private readonly store: RateLimitStore;
  private readonly onStoreError: StoreFailureMode;
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly onStoreFailure: () => void;
  private outage: { since: number; lastLogged: number; failuresSinceLog: number } | undefined;

  constructor(options: RateLimiterOptions) {
    this.store = options.store;
    this.onStoreError = options.onStoreError;
    this.logger = options.logger.child({ component: "rate-limiter" });
    this.now = options.now ?? Date.now;
    this.onStoreFailure = options.onStoreFailure ?? (() => undefined);
  }

  /**
   * Resolves when the call may run (and has been counted), with a function that takes the count
   * back; throws RateLimitedError when it may not.
   */
  async check(rule: RateLimitRule, args: Record<string, unknown>, caller: RateLimitCaller): Promise<RateLimitPass> {
    const cost = callCost(rule, args);
    const counted = await this.count(rule, counterKey(rule, args, caller), cost, caller);
    if ("pass" in counted) return counted.pass;
    throw refusal(rule, counted.retryAfterMs, refusalMessage(rule, cost, retryAfterSeconds(counted.retryAfterMs)));
  }

  /**
   * The calls of one operation, which run all or none: those sharing a counter are one hit of their
   * summed cost. Settles per call, in order: a counter's pass goes to its first call (the others get
   * an empty one: releasing the first gives the whole count back). A refused counter refuses its
   * calls from the first one that does not fit in what is left of the window, as calls checked one
   * by one were refused; a store failure refuses them all (fail-closed).
   */
  async checkAll(calls: readonly RateLimitedCall[], caller: RateLimitCaller): Promise<PromiseSettledResult<RateLimitPass>[]> {
    const results: PromiseSettledResult<RateLimitPass>[] = calls.map(() => ({ status: "fulfilled", value: NOTHING_TO_RELEASE }));
    const refuse = (group: CounterGroup, from: number, reason: unknown) => {
      for (const index of group.indexes.slice(from)) results[index] = { status: "rejected", reason };
    };
    await Promise.all(
      groupByCounter(calls, caller).map(async (group) => {
        const cost = sum(group.costs);
        let counted: Counted;
        try {
          counted = await this.count(group.rule, group.key, cost, caller);
        } catch (err) {
          return refuse(group, 0, err);
        }
        if ("pass" in counted) {
          results[group.indexes[0]] = { status: "fulfilled", value: counted.pass };
          return;
        }
        const message =
          group.indexes.length === 1
            ? refusalMessage(group.rule, cost, retryAfterSeconds(counted.retryAfterMs))
            : operationRefusalMessage(group.rule, cost, retryAfterSeconds(counted.retryAfterMs));
        refuse(group, firstNotFitting(group, counted.used), refusal(group.rule, counted.retryAfterMs, message));
      }),
    );
    return results;
  }

  /**
   * One hit of `cost` on the counter `key`: the pass when counted, or how long until it could be.
   * Throws RATE_LIMITED "unavailable" when the store fails and calls are refused (fail-closed).
   */
  private async count(rule: RateLimitRule, key: string, cost: number, caller: RateLimitCaller): Promise<Counted> {
    let verdict;
    try {
      verdict = await this.store.hit({ key, max: rule.max, windowMs: rule.windowMs, cost, now: this.now() });
    } catch (err) {
      this.onStoreFailure();
      this.noteStoreFailure(err, rule, caller);
      const withdraw = err instanceof UnansweredHitError ? err.withdraw : undefined;
      // Let through, the call runs: a late record counts a call that ran (unless it is refused later).
      if (this.onStoreError === "open") return { pass: withdraw ? { release: withdraw } : NOTHING_TO_RELEASE };
      // Refused, the call never runs: a late record must count nothing.
      void withdraw?.();
      throw new RateLimitedError(LIMITER_UNAVAILABLE_MESSAGE, 1);
    }
    this.noteStoreAnswered();
    if (!verdict.allowed) return { retryAfterMs: verdict.retryAfterMs, used: verdict.used };
    const { release } = verdict;
    return {
      pass: {
        release: () =>
          release().catch((err) => this.logger.warn({ err, operation: rule.coordinate }, "could not release a rate-limit record")),
      },
    };
  }

  private noteStoreFailure(err: unknown, rule: RateLimitRule, caller: RateLimitCaller): void {
    const now = Date.now();
    const facts = { store: this.store.kind, onStoreError: this.onStoreError, operation: rule.coordinate, requestId: caller.requestId };
    if (!this.outage) {
      this.outage = { since: now, lastLogged: now, failuresSinceLog: 0 };
      this.logger.error({ err, ...facts }, `rate limit store failed: calls are ${this.onStoreError === "open" ? "let through unlimited (fail-open)" : "refused (fail-closed)"} until it answers`);
      return;
    }
    this.outage.failuresSinceLog++;
    if (now - this.outage.lastLogged >= OUTAGE_LOG_EVERY_MS) {
      this.logger.error({ err, ...facts, failures: this.outage.failuresSinceLog, outageMs: now - this.outage.since }, "rate limit store still failing");
      this.outage.lastLogged = now;
      this.outage.failuresSinceLog = 0;
    }
  }

  private noteStoreAnswered(): void {
    if (!this.outage) return;
    this.logger.info({ store: this.store.kind, outageMs: Date.now() - this.outage.since }, "rate limit store answers again");
    this.outage = undefined;
  }
}

/** A counted hit's pass, or the refusal's facts: when it could run, and how many calls the window holds. */
type Counted = { readonly pass: RateLimitPass } | { readonly retryAfterMs: number; readonly used: number };

/** The calls grouped by the counter they count against; a group of one is the usual case. */
function groupByCounter(calls: readonly RateLimitedCall[], caller: RateLimitCaller): CounterGroup[] {
  const groups = new Map<string, CounterGroup>();
  calls.forEach(({ rule, args }, index) => {
    const key = counterKey(rule, args, caller);
    let group = groups.get(key);
    if (!group) groups.set(key, (group = { rule, key, indexes: [], costs: [] }));
    group.indexes.push(index);
    group.costs.push(callCost(rule, args));
  });
  return [...groups.values()];
}

/** Position (in the group) of the first call that does not fit in the `max - used` slots left; 0 when none fit. */
function firstNotFitting(group: CounterGroup, used: number): number {
  let free = group.rule.max - used;
  for (let i = 0; i < group.costs.length; i++) {
    free -= group.costs[i];
    if (free < 0) return i;
  }
  return 0;
}

function sum(values: readonly number[]): number {
  return values.reduce((total, value) => total + value, 0);
}

function retryAfterSeconds(retryAfterMs: number): number {
  return Math.max(1, Math.ceil(retryAfterMs / 1000));
}

function refusal(rule: RateLimitRule, retryAfterMs: number, message: string): RateLimitedError {
  return new RateLimitedError(rule.message ?? message, retryAfterSeconds(retryAfterMs));
}

/** The refusal of several calls of one field in one operation (its aliases), which run all or none. */
function operationRefusalMessage(rule: RateLimitRule, cost: number, retryAfterSeconds: number): string {
  if (cost > rule.max) {
    return `Too many calls to ${rule.coordinate} in one operation: it needs ${cost} calls of it, more than the ${rule.max} allowed per ${rule.window}; split it into operations that need at most ${rule.max}`;
  }
  return `Too many calls to ${rule.coordinate}: at most ${rule.max} per ${rule.window}, and this operation needs ${cost}; try again in ${retryAfterSeconds} s`;
}

function refusalMessage(rule: RateLimitRule, cost: number, retryAfterSeconds: number): string {
  if (cost > rule.max) {
    return `Too many items for ${rule.coordinate}: this call counts as ${cost} (the length of ${rule.arrayLengthField}), more than the ${rule.max} allowed per ${rule.window}; send fewer at a time`;
  }
  return `Too many calls to ${rule.coordinate}: at most ${rule.max} per ${rule.window}; try again in ${retryAfterSeconds} s`;
}
