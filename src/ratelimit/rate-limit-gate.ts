/**
 * The charge wrapper's view of rate limiting (step 4 of the charge path): check one call of a
 * metered field, throwing RATE_LIMITED when the caller is over the field's @rateLimit, or over the
 * default limit when it has none. Nothing has been charged when it throws.
 */
import type { GraphQLResolveInfo } from "graphql";
import type { CreditsRequest as RequestContext } from "../credits/credits-request.js";
import type { MeteredField } from "../credits/metered-field.js";
import type { RateLimitPass } from "./rate-limiter.js";

/** One metered call of an operation, as the gate sees it. */
export interface GatedCall {
  readonly field: MeteredField;
  readonly args: Record<string, unknown>;
}

export interface RateLimitGate {
  /** Resolves with the counted call's pass (its record can be released), or nothing when no record was made. */
  checkMetered(field: MeteredField, args: Record<string, unknown>, ctx: RequestContext, info?: GraphQLResolveInfo): Promise<RateLimitPass | void>;
  /**
   * The metered calls of one operation, which run all or none: calls sharing a counter (same field,
   * identityArgs' values and caller) are one hit of their summed cost, so a refusal's retry time is
   * when that many slots are free. Settles per call, in order. Optional: without it, each call is
   * checked on its own (as a host's own gate may do).
   */
  checkMeteredCalls?(calls: readonly GatedCall[], ctx: RequestContext): Promise<PromiseSettledResult<RateLimitPass | void>[]>;
}

/** Step 4 for the calls of one operation: together when there are several and the gate can, else one by one. */
export function checkOperationCalls(gate: RateLimitGate, calls: readonly GatedCall[], ctx: RequestContext): Promise<PromiseSettledResult<RateLimitPass | void>[]> {
  if (calls.length > 1 && gate.checkMeteredCalls) return gate.checkMeteredCalls(calls, ctx);
  return Promise.allSettled(calls.map((call) => gate.checkMetered(call.field, call.args, ctx)));
}
