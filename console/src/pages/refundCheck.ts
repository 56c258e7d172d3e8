/**
 * Before a refund from a subscription's page: is the entry a charge (DEBIT) of this subscription?
 * refundCharge takes any debit id, so an id pasted from another subscription's page would move
 * credits there, while the page on screen said it refunded this one's. There is no query for one
 * entry by id: the subscription's own debits are looked through, newest first, a page at a time.
 */
import { SubscriptionDebitsDocument } from "../generated/graphql";
import { request } from "../api/client";

/** The most debits read per page (the server's largest ledger page). */
const PAGE = 1_000;
/** Pages looked through at most: a charge older than this many debits is not found. */
const MAX_PAGES = 50;

export interface Debit {
  id: string;
  type: string;
  amount: number;
}

/** The subscription's DEBIT entry with this id, or undefined when it has none (another's, or not a debit). */
export async function findDebit(subscriptionId: string, entryId: string): Promise<Debit | undefined> {
  let after: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const data = await request(SubscriptionDebitsDocument, { subscriptionId, first: PAGE, after });
    const found = data.creditLedger.edges.find((e) => e.node.id === entryId);
    if (found) return found.node;
    if (!data.creditLedger.pageInfo.hasNextPage || !data.creditLedger.pageInfo.endCursor) return undefined;
    after = data.creditLedger.pageInfo.endCursor;
  }
  return undefined;
}
