/** The ledger entry as the rest of the code sees it, and its mapping from raw SQL rows. */
import type { LedgerKindValue } from "../db/schema/ledger.js";

export interface LedgerEntryRecord {
  id: string;
  seq: number;
  subscriptionId: string;
  creditType: string;
  kind: LedgerKindValue;
  amount: number;
  balanceAfter: number;
  operation: string | null;
  estimated: number | null;
  actorId: string | null;
  adminOverride: boolean;
  reason: string | null;
  refundOf: string | null;
  requestId: string | null;
  createdAt: Date;
}

/** Columns to RETURN from a raw ledger INSERT so `entryFromRow` can read them. */
export const LEDGER_RETURNING =
  "id, seq, subscription_id, credit_type, kind, amount, balance_after, operation, estimated, actor_id, admin_override, reason, refund_of, request_id, created_at";

export interface LedgerRow {
  id: string;
  seq: number | string;
  subscription_id: string;
  credit_type: string;
  kind: LedgerKindValue;
  amount: number;
  balance_after: number;
  operation: string | null;
  estimated: number | null;
  actor_id: string | null;
  admin_override: boolean;
  reason: string | null;
  refund_of: string | null;
  request_id: string | null;
  created_at: Date | string;
}

export function entryFromRow(row: LedgerRow): LedgerEntryRecord {
  return {
    id: row.id,
    seq: Number(row.seq),
    subscriptionId: row.subscription_id,
    creditType: row.credit_type,
    kind: row.kind,
    amount: Number(row.amount),
    balanceAfter: Number(row.balance_after),
    operation: row.operation,
    estimated: row.estimated === null ? null : Number(row.estimated),
    actorId: row.actor_id,
    adminOverride: row.admin_override,
    reason: row.reason,
    refundOf: row.refund_of,
    requestId: row.request_id,
    createdAt: row.created_at instanceof Date ? row.created_at : new Date(row.created_at),
  };
}
