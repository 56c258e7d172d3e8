/**
 * Types for clients of this API: what every response that ran a metered field carries in
 * `extensions.credits` (DESIGN.md, "extensions.credits"), and the scalars codegen should map. A
 * frontend imports these next to its generated documents (docs/live-balance.md shows both). Type-only
 * re-exports of the server's own records, so the client's view cannot drift from what is sent.
 */
export type { ChargeRecord as CreditCharge, CreditsExtension } from "../credits/charge-collector.js";
import type { CreditsExtension } from "../credits/charge-collector.js";

/** How codegen should map this schema's scalars (`config.scalars` of @graphql-codegen). */
export const CREDITS_SCALARS = {
  DateTimeISO: "string",
  JSONObject: "Record<string, unknown>",
  SafeInt: "number",
} as const;

/** A GraphQL response body as this server sends it, with the credits extension typed. */
export interface CreditsResponse<TData> {
  data?: TData | null;
  errors?: { message: string; path?: (string | number)[]; extensions?: { code?: string; [key: string]: unknown } }[];
  extensions?: { credits?: CreditsExtension; [key: string]: unknown };
}

/** The remaining balance of one type after the request, when the response tells it. */
export function remainingCredits(response: CreditsResponse<unknown>, subscriptionId: string, type: string): number | undefined {
  return response.extensions?.credits?.remaining[subscriptionId]?.[type];
}
