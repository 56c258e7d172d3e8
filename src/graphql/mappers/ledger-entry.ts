/**
 * Maps a ledger entry as the ledger module returns it to the GraphQL `LedgerEntry` type. Shared by
 * every field that answers with ledger entries (admin mutations, creditLedger), so they all show an
 * entry the same way.
 */
import type { LedgerEntryRecord } from "../../ledger/entry.js";
import { LedgerKind } from "../types/enums.js";
import type { LedgerEntry } from "../types/ledger.js";

export function toLedgerEntry(record: LedgerEntryRecord): LedgerEntry {
  return {
    id: record.id,
    subscriptionId: record.subscriptionId,
    type: record.creditType,
    kind: record.kind as LedgerKind,
    amount: record.amount,
    balanceAfter: record.balanceAfter,
    operation: record.operation,
    estimated: record.estimated,
    actorId: record.actorId,
    adminOverride: record.adminOverride,
    reason: record.reason,
    refundOf: record.refundOf,
    requestId: record.requestId,
    createdAt: record.createdAt,
  };
}
