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
      -- Update first, insert only when there is no row: PostgreSQL checks CHECK constraints on the
      -- proposed row of an INSERT … ON CONFLICT before it looks for the conflict, so an upsert of a
      -- negative delta would be refused even when the existing balance covers it.
      with updated as (
        update credit_balances
           set balance = balance + ${change.delta}::int, updated_at = now()
         where subscription_id = ${change.subscriptionId}::uuid and credit_type = ${change.creditType}
        returning subscription_id, credit_type, balance
      ), inserted as (
        insert into credit_balances as b (subscription_id, credit_type, balance)
        select ${change.subscriptionId}::uuid, ${change.creditType}, ${change.delta}::int
         where not exists (select 1 from updated)
        on conflict (subscription_id, credit_type)
          do update set balance = b.balance + excluded.balance, updated_at = now()
        returning subscription_id, credit_type, balance
      ), changed as (
        select * from updated union all select * from inserted
      )
      insert into credit_ledger (subscription_id, credit_type, kind, amount, balance_after, actor_id, reason, request_id)
      select subscription_id, credit_type, ${change.kind}, ${change.delta}::int,
             -- Credits added must leave room for the held ones to come back (drizzle/0016_balance_room.sql).
             case when ${change.delta}::int > 0 then credit_assert_room(subscription_id, credit_type, balance) else balance end,
             ${change.actorId}, ${change.reason},
             ${change.requestId}
        from changed
      returning ${sql.raw(LEDGER_RETURNING)}`,
  );
  return entryFromRow(rows[0]);
}
