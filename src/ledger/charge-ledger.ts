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
}

/** One statement per operation, straight to the database. */
export function directChargeLedger(db: Database): ChargeLedger {
  return {
    debit: (request) => debitCredits(db, request),
    settle: (subscriptionId, entryId) => settleCharge(db, subscriptionId, entryId),
    refund: (request) => refundPendingCharge(db, request),
  };
}
