/**
 * Settling a charge: success removes its pending mark; a system failure refunds it whole. Both act
 * only while the pending mark exists, and deleting the mark is part of the same statement, so a
 * charge is settled exactly once even when the recovery pass of another instance races with it.
 */
import { sql } from "drizzle-orm";
import { queryRows, type DbOrTx } from "../db/database.js";
import { entryFromRow, LEDGER_RETURNING, type LedgerEntryRecord, type LedgerRow } from "./entry.js";

/** Marks a successful charge settled. False when it was no longer pending (the recovery pass refunded it). */
export async function settleCharge(db: DbOrTx, subscriptionId: string, entryId: string): Promise<boolean> {
  const rows = await queryRows<{ entry_id: string }>(
    db,
    sql`delete from pending_charges where subscription_id = ${subscriptionId}::uuid and entry_id = ${entryId}::uuid returning entry_id`,
  );
  return rows.length === 1;
}

/** Marks many successful charges settled in one statement (used by the settlement batcher). */
export async function settleCharges(db: DbOrTx, charges: { subscriptionId: string; entryId: string }[]): Promise<Set<string>> {
  if (charges.length === 0) return new Set();
  const subs = charges.map((c) => c.subscriptionId);
  const entries = charges.map((c) => c.entryId);
  const rows = await queryRows<{ entry_id: string }>(
    db,
    sql`delete from pending_charges p
         using unnest(${sql.param(subs)}::uuid[], ${sql.param(entries)}::uuid[]) as s(subscription_id, entry_id)
         where p.subscription_id = s.subscription_id and p.entry_id = s.entry_id
        returning p.entry_id`,
  );
  return new Set(rows.map((r) => r.entry_id));
}

/** Which of these debits have a REFUND entry (used to tell "settled by us" from "refunded by recovery"). */
export async function refundedEntries(db: DbOrTx, charges: { subscriptionId: string; entryId: string }[]): Promise<Set<string>> {
  if (charges.length === 0) return new Set();
  const rows = await queryRows<{ refund_of: string }>(
    db,
    sql`select l.refund_of from credit_ledger l
          join unnest(${sql.param(charges.map((c) => c.subscriptionId))}::uuid[], ${sql.param(charges.map((c) => c.entryId))}::uuid[])
               as s(subscription_id, entry_id)
            on l.subscription_id = s.subscription_id and l.refund_of = s.entry_id
         where l.kind = 'REFUND'`,
  );
  return new Set(rows.map((r) => r.refund_of));
}

export interface RefundPendingRequest {
  subscriptionId: string;
  entryId: string;
  reason: string;
  actorId: string | null;
  requestId: string | null;
}

/**
 * Refunds a pending charge in full, in one statement: removes the pending mark, gives the credits
 * back and writes the REFUND entry. Returns undefined when the charge was not pending any more.
 */
export async function refundPendingCharge(db: DbOrTx, request: RefundPendingRequest): Promise<LedgerEntryRecord | undefined> {
  const rows = await queryRows<LedgerRow>(
    db,
    sql`
      with pending as (
        delete from pending_charges
         where subscription_id = ${request.subscriptionId}::uuid and entry_id = ${request.entryId}::uuid
        returning subscription_id, entry_id, credit_type, amount, operation
      ), credited as (
        update credit_balances b
           set balance = b.balance + p.amount, updated_at = now()
          from pending p
         where b.subscription_id = p.subscription_id and b.credit_type = p.credit_type
        returning b.subscription_id, b.credit_type, b.balance, p.amount, p.entry_id, p.operation
      )
      insert into credit_ledger
        (subscription_id, credit_type, kind, amount, balance_after, operation, actor_id, reason, refund_of, request_id)
      select subscription_id, credit_type, 'REFUND', amount, balance, operation, ${request.actorId}, ${request.reason},
             entry_id, ${request.requestId}
        from credited
      returning ${sql.raw(LEDGER_RETURNING)}`,
  );
  return rows.length === 1 ? entryFromRow(rows[0]) : undefined;
}
