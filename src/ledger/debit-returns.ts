/**
 * What has come back of one DEBIT so far: its RELEASE entries (the unused part of the hold) and its
 * REFUND entries (a system error, an undelivered result, the recovery pass, an admin), summed apart.
 * A read of the ledger, the truth of what a charge finally cost.
 */
import { sql } from "drizzle-orm";
import { queryRows, type DbOrTx } from "../db/database.js";

export interface DebitReturns {
  released: number;
  refunded: number;
}

export async function debitReturns(db: DbOrTx, subscriptionId: string, entryId: string): Promise<DebitReturns> {
  const rows = await queryRows<{ released: number | string; refunded: number | string }>(
    db,
    sql`
      select coalesce(sum(amount) filter (where kind = 'RELEASE'), 0) as released,
             coalesce(sum(amount) filter (where kind = 'REFUND'), 0) as refunded
        from credit_ledger
       where subscription_id = ${subscriptionId}::uuid and refund_of = ${entryId}::uuid`,
  );
  return { released: Number(rows[0]?.released ?? 0), refunded: Number(rows[0]?.refunded ?? 0) };
}
