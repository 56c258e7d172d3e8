/**
 * What has come back of one DEBIT so far: its RELEASE entries (the unused part of the hold) and its
 * REFUND entries (a system error, an undelivered result, the recovery pass, an admin), summed apart,
 * and the balance it was drawn from as it stands now. A read of the ledger, the truth of what a
 * charge finally cost (an idempotent replay reports it).
 */
import { sql } from "drizzle-orm";
import { queryRows, type DbOrTx } from "../db/database.js";

export interface DebitReturns {
  released: number;
  refunded: number;
  /**
   * The balance of the debit's subscription and credit type now, as credits available (0 when it has
   * none): what is left of grants that have expired is not counted (src/ledger/balances.ts).
   */
  balanceNow: number;
}

export async function debitReturns(db: DbOrTx, subscriptionId: string, creditType: string, entryId: string): Promise<DebitReturns> {
  const rows = await queryRows<{ released: number | string; refunded: number | string; balance: number | string | null }>(
    db,
    sql`
      select coalesce(sum(amount) filter (where kind = 'RELEASE'), 0) as released,
             coalesce(sum(amount) filter (where kind = 'REFUND'), 0) as refunded,
             (select b.balance - coalesce((
                       select sum(g.remaining) from credit_grants g
                        where g.subscription_id = b.subscription_id and g.credit_type = b.credit_type
                          and not g.exhausted and g.expires_at <= now()), 0)
                from credit_balances b
               where b.subscription_id = ${subscriptionId}::uuid and b.credit_type = ${creditType}) as balance
        from credit_ledger
       where subscription_id = ${subscriptionId}::uuid and refund_of = ${entryId}::uuid`,
  );
  const row = rows[0];
  return { released: Number(row?.released ?? 0), refunded: Number(row?.refunded ?? 0), balanceNow: Number(row?.balance ?? 0) };
}
