/**
 * Grants and adjustments: one statement that changes a balance (creating the row when the
 * subscription has none of that type yet) and writes the ledger entry with the balance after it.
 * The balance CHECK refuses to go below zero, so a concurrent debit can never be overdrawn by an
 * adjustment; the caller turns that refusal into a clear BAD_USER_INPUT.
 */
import { sql } from "drizzle-orm";
import { queryRows, type DbOrTx } from "../db/database.js";
import { entryFromRow, LEDGER_RETURNING, type LedgerEntryRecord, type LedgerRow } from "./entry.js";

export interface BalanceChange {
  subscriptionId: string;
  creditType: string;
  kind: "GRANT" | "ADJUSTMENT";
  /** Signed change; GRANT is always positive. */
  delta: number;
  actorId: string | null;
  reason: string | null;
  requestId: string | null;
}

export async function changeBalance(db: DbOrTx, change: BalanceChange): Promise<LedgerEntryRecord> {
  const rows = await queryRows<LedgerRow>(
    db,
    sql`
      with changed as (
        insert into credit_balances as b (subscription_id, credit_type, balance)
        values (${change.subscriptionId}::uuid, ${change.creditType}, ${change.delta}::int)
        on conflict (subscription_id, credit_type)
          do update set balance = b.balance + excluded.balance, updated_at = now()
        returning subscription_id, credit_type, balance
      )
      insert into credit_ledger (subscription_id, credit_type, kind, amount, balance_after, actor_id, reason, request_id)
      select subscription_id, credit_type, ${change.kind}, ${change.delta}::int, balance, ${change.actorId}, ${change.reason},
             ${change.requestId}
        from changed
      returning ${sql.raw(LEDGER_RETURNING)}`,
  );
  return entryFromRow(rows[0]);
}
