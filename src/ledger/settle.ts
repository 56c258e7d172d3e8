/**
 * Settling holds: the one SQL statement that ends holds (DESIGN.md, "The charge path", step 8), used
 * by the charge path (batched per operation and across requests), by the recovery pass and by the
 * tests alike. Per hold, one of:
 *   - post: the call cost what was held; the pending mark goes, nothing else changes;
 *   - post with a release: the call cost less than its hold (a meter said so); a RELEASE entry
 *     returns the rest;
 *   - void: the call failed on our side, or its result never reached the client; a REFUND entry
 *     returns the whole hold.
 * Each acts only while the hold's pending mark exists, and deleting the mark is part of the same
 * statement, so a hold is settled exactly once even when another instance's recovery pass races
 * with it. The balance rows credited are locked in key order (as the hold statement locks them), so
 * a settlement and a hold never deadlock. The ledger trigger keeps releases plus refunds of a debit
 * at or below the debit. The statement calls credit_settle(), a PL/pgSQL function whose plans are
 * cached per session (drizzle/0010_charge_functions.sql).
 */
import { sql } from "drizzle-orm";
import { queryRows, type DbOrTx } from "../db/database.js";

export type Settlement =
  | { kind: "post"; subscriptionId: string; entryId: string; actorId: string | null; requestId: string | null }
  | {
      kind: "release";
      subscriptionId: string;
      entryId: string;
      /** Credits to return (what the hold exceeded the cost by); capped at the hold. */
      amount: number;
      actorId: string | null;
      requestId: string | null;
    }
  | { kind: "void"; subscriptionId: string; entryId: string; reason: string; actorId: string | null; requestId: string | null };

export type SettlementOutcome =
  /**
   * The hold was pending and is settled now: `returned` credits came back (0 for a plain post), the
   * balance was `balanceAfter` after them. Both are unknown after a retried statement whose first
   * attempt committed unseen.
   */
  | { settled: true; returned?: number; balanceAfter?: number }
  /**
   * The hold was no longer pending: something else (the recovery pass) settled it first; or, with
   * `markMissing`, its pending mark was gone while no REFUND nor RELEASE of it exists (removed by
   * hand, outside the server, or posted whole before): nothing was written, and the hold stands as
   * the call's cost.
   */
  | { settled: false; markMissing?: true };

interface SettlementRecord {
  ord: number;
  subscription_id: string;
  entry_id: string;
  kind: "REFUND" | "RELEASE" | null;
  amount: number;
  reason: string | null;
  actor_id: string | null;
  request_id: string | null;
}

interface SettledRow {
  ord: number | string;
  returned: number | string;
  balance_after: number | string | null;
}

function recordOf(settlement: Settlement, ord: number): SettlementRecord {
  const base = { ord, subscription_id: settlement.subscriptionId, entry_id: settlement.entryId, actor_id: settlement.actorId, request_id: settlement.requestId };
  switch (settlement.kind) {
    case "post":
      return { ...base, kind: null, amount: 0, reason: null };
    case "release":
      return { ...base, kind: settlement.amount > 0 ? "RELEASE" : null, amount: settlement.amount, reason: null };
    case "void":
      return { ...base, kind: "REFUND", amount: 0, reason: settlement.reason };
  }
}

/** Settles `settlements` in one statement; one outcome each, in order. */
export async function settleHolds(db: DbOrTx, settlements: readonly Settlement[]): Promise<SettlementOutcome[]> {
  if (settlements.length === 0) return [];
  const records = settlements.map((s, i) => recordOf(s, i + 1));
  // The statement is the database function of drizzle/0010_charge_functions.sql: its plans are
  // cached per session, which a statement sent as text cannot have through a transaction-mode pooler.
  const column = <K extends keyof SettlementRecord>(key: K) => sql.param(records.map((r) => r[key]));
  const rows = await queryRows<SettledRow>(
    db,
    sql`select * from credit_settle(
          ${column("subscription_id")}::uuid[], ${column("entry_id")}::uuid[], ${column("kind")}::text[], ${column("amount")}::integer[],
          ${column("reason")}::text[], ${column("actor_id")}::text[], ${column("request_id")}::text[])`,
  );
  const byOrd = new Map(rows.map((row) => [Number(row.ord), row]));
  return records.map((record): SettlementOutcome => {
    const row = byOrd.get(record.ord);
    if (!row) return { settled: false };
    return {
      settled: true,
      returned: Number(row.returned),
      balanceAfter: row.balance_after === null ? undefined : Number(row.balance_after),
    };
  });
}

/**
 * Which of these holds have a REFUND entry (tells "settled by us" from "refunded by recovery" after a
 * retry); with `kinds` ["REFUND", "RELEASE"], which have either (a hold with neither and no pending
 * mark was posted whole, or its mark was deleted by hand).
 */
export async function refundedEntries(
  db: DbOrTx,
  holds: readonly { subscriptionId: string; entryId: string }[],
  kinds: readonly ("REFUND" | "RELEASE")[] = ["REFUND"],
): Promise<Set<string>> {
  if (holds.length === 0) return new Set();
  const rows = await queryRows<{ refund_of: string }>(
    db,
    sql`select l.refund_of from credit_ledger l
          join unnest(${sql.param(holds.map((c) => c.subscriptionId))}::uuid[], ${sql.param(holds.map((c) => c.entryId))}::uuid[])
               as s(subscription_id, entry_id)
            on l.subscription_id = s.subscription_id and l.refund_of = s.entry_id
         where l.kind = any(${sql.param([...kinds])}::text[])`,
  );
  return new Set(rows.map((r) => r.refund_of));
}
