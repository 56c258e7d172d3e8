/**
 * The ledger audit: every balance must equal the sum of its ledger entries. Computed in SQL in one
 * pass (a full join, so ledger entries without a balance row are caught as well).
 */
import { sql } from "drizzle-orm";
import { queryRows, type DbOrTx } from "../db/database.js";

export interface AuditMismatch {
  subscriptionId: string;
  creditType: string;
  balance: number;
  ledgerSum: number;
}

export interface AuditReport {
  checkedBalances: number;
  mismatches: AuditMismatch[];
  ok: boolean;
}

export async function auditLedger(db: DbOrTx): Promise<AuditReport> {
  const rows = await queryRows<{ subscription_id: string; credit_type: string; balance: number | string; ledger_sum: number | string; checked: number | string }>(
    db,
    sql`
      with sums as (
        select subscription_id, credit_type, sum(amount)::bigint as ledger_sum
          from credit_ledger
         group by subscription_id, credit_type
      ), compared as (
        select coalesce(b.subscription_id, s.subscription_id) as subscription_id,
               coalesce(b.credit_type, s.credit_type) as credit_type,
               coalesce(b.balance, 0)::bigint as balance,
               coalesce(s.ledger_sum, 0)::bigint as ledger_sum
          from credit_balances b
          full join sums s on s.subscription_id = b.subscription_id and s.credit_type = b.credit_type
      )
      select subscription_id, credit_type, balance, ledger_sum, count(*) over () as checked
        from compared
       order by (balance <> ledger_sum) desc, subscription_id, credit_type`,
  );
  const mismatches = rows
    .filter((r) => Number(r.balance) !== Number(r.ledger_sum))
    .map((r) => ({
      subscriptionId: r.subscription_id,
      creditType: r.credit_type,
      balance: Number(r.balance),
      ledgerSum: Number(r.ledger_sum),
    }));
  return { checkedBalances: rows.length === 0 ? 0 : Number(rows[0].checked), mismatches, ok: mismatches.length === 0 };
}
