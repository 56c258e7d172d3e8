/**
 * The charge wrapper's view of Idempotency-Key handling. `begin` claims (caller, key, field path)
 * before anything is charged: a first call gets a ticket to settle the key with; a retry of a
 * settled call gets its stored outcome and charge to replay; a retry while the first still runs is
 * CONFLICT; the same key with other arguments is BAD_USER_INPUT.
 *
 * What the wrapper does with the ticket (docs/reliability-idempotency-recovery.md):
 * - success → `complete(result, charge)`: a retry replays the result and the charge;
 * - the resolver raised a user-input error and the charge was kept → `completeWithError`: a retry
 *   replays the same error and charge instead of paying a second time;
 * - refused before the debit (rate limit, insufficient credits …) or refunded after a system error
 *   → `abandon()`: nothing stands charged, so the key is released and a retry runs afresh.
 */
import type { GraphQLError } from "graphql";
import type { CreditsRequest as RequestContext } from "../credits/credits-request.js";
import type { MeteredField } from "../credits/metered-field.js";
import type { ChargeRecord } from "../credits/charge-collector.js";

export interface FirstClaim {
  kind: "first";
  /**
   * The instance lease the claim was made under: the call's holds must be taken under it
   * (HoldRequest.requiredLease), since a retry may take the key over once it has expired.
   */
  requiredLease?: string;
  /** The field succeeded: store its result and charge for retries. */
  complete(result: unknown, charge: ChargeRecord): Promise<void>;
  /** The resolver refused the caller's input and the charge stands: store the error and the charge for retries. */
  completeWithError(error: GraphQLError, charge: ChargeRecord): Promise<void>;
  /** Nothing stands charged: release the key so a retry runs. */
  abandon(): Promise<void>;
}

export interface ReplayClaim {
  kind: "replay";
  /** The stored result (undefined when the stored outcome is an error). */
  result: unknown;
  /** The charge of the first call, as it was recorded then. */
  charge: ChargeRecord;
  /** Set when the first call ended in a user-input error: the retry raises it again. */
  error?: GraphQLError;
}

export type IdempotencyClaim = FirstClaim | ReplayClaim;

export interface IdempotencyGate {
  /** Undefined when the request carries no Idempotency-Key. */
  /** `fieldPath` is the field's response path joined with dots (e.g. "runAiTask"). */
  begin(field: MeteredField, args: Record<string, unknown>, ctx: RequestContext, fieldPath: string): Promise<IdempotencyClaim | undefined>;
}
