/**
 * The three ledger operations the charge path needs, behind one interface so the way they reach the
 * database (one statement each, or coalesced per hot subscription) can change without touching the
 * wrapper.
 */
import type { Database } from "../db/database.js";
import { debitCredits, type DebitOutcome, type DebitRequest } from "./debit.js";
import { refundPendingCharge, settleCharge, type RefundPendingRequest } from "./settle.js";
import type { LedgerEntryRecord } from "./entry.js";

export interface ChargeLedger {
  debit(request: DebitRequest): Promise<DebitOutcome>;
  /** True when the charge was still pending and is now settled as a success. */
  settle(subscriptionId: string, entryId: string): Promise<boolean>;
  /** Refunds a pending charge whole; undefined when it was no longer pending. */
  refund(request: RefundPendingRequest): Promise<LedgerEntryRecord | undefined>;
  /**
   * Optional: the debit with step 3 of the charge path folded in. It debits only when the
   * subscription exists, is ACTIVE and the actor owns it or is an admin, checked in the debit's own
   * statement, which saves the charge path a separate read. Refused that way, it answers
   * "unauthorized" with what it saw, so the caller raises the same error as step 3 would.
   */
  authorizeAndDebit?(request: AuthorizedDebitRequest): Promise<AuthorizedDebitOutcome>;
}

export type AuthorizedDebitRequest = DebitRequest & { actorIsAdmin: boolean };

export type AuthorizedDebitOutcome =
  | DebitOutcome
  /** `subscription` is undefined when it does not exist. */
  | { ok: false; reason: "unauthorized"; subscription: { ownerId: string; status: string } | undefined };

/** One statement per operation, straight to the database. */
export function directChargeLedger(db: Database): ChargeLedger {
  return {
    debit: (request) => debitCredits(db, request),
    settle: (subscriptionId, entryId) => settleCharge(db, subscriptionId, entryId),
    refund: (request) => refundPendingCharge(db, request),
  };
}
