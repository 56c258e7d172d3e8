/**
 * What each debit on a ledger page has left to refund: its amount less what its REFUND and RELEASE
 * entries gave back (refundCharge's own count: charged − released − refunded), so the ledger does
 * not offer "refund…" on a debit the server would refuse as "nothing left to refund".
 *
 * There is no filter by refundOf: the subscription's REFUND and RELEASE entries since the oldest
 * debit of the page are read (a return is always written after its debit), up to MAX_PAGES pages.
 * Past that the sums are partial, so what is left is over-counted, never under: a debit is only
 * ever hidden when it has nothing left for certain.
 */
import { useEffect, useState } from "react";
import { DebitReturnsDocument } from "../generated/graphql";
import { request } from "../api/client";

/** The server's largest ledger page. */
const PAGE = 1_000;
const MAX_PAGES = 10;
/** Read from a little before the oldest debit, whatever the rounding of its time. */
const SLACK_MS = 1_000;

export interface DebitOnPage {
  id: string;
  /** The DEBIT entry's amount (negative). */
  amount: number;
  createdAt: string;
}

/**
 * Credits left to refund per debit id (a debit not in it is still being read); undefined before the
 * first read; "unknown" when they could not be read (every debit is then offered, and the server
 * says what is left).
 */
export type DebitsLeft = ReadonlyMap<string, number> | "unknown" | undefined;

export function useDebitsLeft(subscriptionId: string | undefined, debits: readonly DebitOnPage[], reloadKey: number): DebitsLeft {
  const [left, setLeft] = useState<DebitsLeft>();
  const key = subscriptionId && debits.length > 0 ? JSON.stringify([subscriptionId, debits, reloadKey]) : "";

  useEffect(() => {
    if (!key) return;
    const [id, onPage] = JSON.parse(key) as [string, DebitOnPage[]];
    // What was read for the last key is kept meanwhile (no flicker after a reload of the same page).
    let cancelled = false;
    void (async () => {
      const oldest = Math.min(...onPage.map((d) => Date.parse(d.createdAt)));
      const from = new Date(oldest - SLACK_MS).toISOString();
      const returned = new Map<string, number>(onPage.map((d) => [d.id, 0]));
      try {
        let after: string | undefined;
        for (let page = 0; page < MAX_PAGES; page++) {
          const data = await request(DebitReturnsDocument, { subscriptionId: id, from, first: PAGE, after });
          for (const { node } of data.creditLedger.edges) {
            if (node.refundOf && returned.has(node.refundOf)) returned.set(node.refundOf, returned.get(node.refundOf)! + node.amount);
          }
          const { hasNextPage, endCursor } = data.creditLedger.pageInfo;
          if (!hasNextPage || !endCursor) break;
          after = endCursor;
        }
        if (!cancelled) setLeft(new Map(onPage.map((d) => [d.id, -d.amount - returned.get(d.id)!])));
      } catch {
        if (!cancelled) setLeft("unknown");
      }
    })();
    return () => {
      cancelled = true;
    };
  }, [key]);

  return key ? left : undefined;
}

/** Is "refund…" offered on this debit? Not before it is known, not when nothing is left for certain. */
export function refundOffered(left: DebitsLeft, id: string): boolean {
  if (left === undefined) return false;
  if (left === "unknown") return true;
  const credits = left.get(id);
  return credits !== undefined && credits > 0;
}
