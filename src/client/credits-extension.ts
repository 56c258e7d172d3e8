/**
 * Types for clients of this API: what every response that ran a metered field carries in
 * `extensions.credits` (DESIGN.md, "extensions.credits"), and the scalars codegen should map. A
 * frontend or Node client imports these next to its generated documents (docs/live-balance.md, "A
 * typed client", and docs/client/example.ts show both).
 *
 * Published as `graphql-credits/client` (package.json "exports", built by `npm run build:lib`). It
 * imports nothing, so it can also be copied into a client as it is. The server records its charges
 * in these very types (src/credits/charge-collector.ts re-exports them as ChargeRecord and
 * CreditsExtension), so the client's view cannot drift from what is sent; test/unit/client-docs.test.ts
 * checks the built package says so too.
 */

/** One charge of a metered field, as `extensions.credits.charges` reports it. */
export interface CreditCharge {
  /**
   * The field's response path, aliases included, e.g. `["searchLeads"]`; list indices are numbers, as
   * in an error's `path`, so a charge matches its error or its place in `data` as it is.
   */
  path: (string | number)[];
  /** The metered field, e.g. `"Mutation.searchLeads"`. */
  operation: string;
  subscriptionId: string;
  /** The credit type charged, e.g. `"leads"`. */
  type: string;
  /** The estimator's (or fixed amount's) price. */
  estimated: number;
  /** What was held: the estimate, or the admin's creditAmount. */
  charged: number;
  /** What the meter measured, before the floor of 1 and the cap at the hold; null without a meter. */
  actual: number | null;
  /** Returned by the RELEASE entry after settling at the actual cost. */
  released: number;
  /** Returned by a REFUND (system error, result not delivered). */
  refunded: number;
  /** charged − released − refunded: what the call finally costs. */
  cost: number;
  /** The balance after the last change this request made to it. */
  remaining: number;
  entryId: string;
  adminOverride: boolean;
  fallback: boolean;
  /** Present (true) only on a charge replayed from an Idempotency-Key. */
  replayed?: boolean;
}

/** `extensions.credits` of a response that ran a metered field. */
export interface CreditsExtension {
  charges: CreditCharge[];
  /** The balances after the request: `remaining[subscriptionId][creditType]`. */
  remaining: Record<string, Record<string, number>>;
}

/**
 * How codegen should map this schema's scalars (`config.scalars` of @graphql-codegen):
 * docs/client/codegen.ts writes the same mapping out.
 */
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
