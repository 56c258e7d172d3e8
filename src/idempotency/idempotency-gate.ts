/**
 * The charge wrapper's view of Idempotency-Key handling. `begin` claims (caller, key, field path)
 * before anything is charged: a first call gets a ticket to complete or abandon; a retry of a
 * completed call gets its stored result and charge to replay; a retry while the first still runs is
 * CONFLICT; the same key with other arguments is BAD_USER_INPUT.
 */
import type { GraphQLResolveInfo } from "graphql";
import type { RequestContext } from "../graphql/context.js";
import type { MeteredField } from "../credits/metered-field.js";
import type { ChargeRecord } from "../credits/charge-collector.js";

export type IdempotencyClaim =
  | { kind: "first"; complete(result: unknown, charge: ChargeRecord): Promise<void>; abandon(): Promise<void> }
  | { kind: "replay"; result: unknown; charge: ChargeRecord };

export interface IdempotencyGate {
  /** Undefined when the request carries no Idempotency-Key. */
  begin(
    field: MeteredField,
    args: Record<string, unknown>,
    ctx: RequestContext,
    info: GraphQLResolveInfo,
  ): Promise<IdempotencyClaim | undefined>;
}
