/**
 * The charge wrapper's view of rate limiting (step 4 of the charge path): check one call of a
 * metered field, throwing RATE_LIMITED when the caller is over the field's @rateLimit, or over the
 * default limit when it has none. Nothing has been charged when it throws.
 */
import type { GraphQLResolveInfo } from "graphql";
import type { CreditsRequest as RequestContext } from "../credits/credits-request.js";
import type { MeteredField } from "../credits/metered-field.js";
import type { RateLimitPass } from "./rate-limiter.js";

export interface RateLimitGate {
  /** Resolves with the counted call's pass (its record can be released), or nothing when no record was made. */
  checkMetered(field: MeteredField, args: Record<string, unknown>, ctx: RequestContext, info?: GraphQLResolveInfo): Promise<RateLimitPass | void>;
}
