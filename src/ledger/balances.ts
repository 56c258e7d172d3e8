/** Reads balances. Batched by subscription so a request's DataLoader makes one query per batch. */
import { inArray, sql } from "drizzle-orm";
import { queryRows } from "../db/database.js";
import type { DbOrTx } from "../db/database.js";
import { creditBalances } from "../db/schema/balances.js";

export interface BalanceRecord {
  subscriptionId: string;
  creditType: string;
  balance: number;
  updatedAt: Date;
}

export async function balancesOfSubscriptions(db: DbOrTx, subscriptionIds: readonly string[]): Promise<BalanceRecord[]> {
  if (subscriptionIds.length === 0) return [];
  const rows = await db
    .select()
    .from(creditBalances)
    .where(inArray(creditBalances.subscriptionId, [...subscriptionIds]))
    .orderBy(creditBalances.subscriptionId, creditBalances.creditType);
  return rows.map((r) => ({ ...r, balance: Number(r.balance) }));
}

/** Credits held by open holds (pending charges), per subscription and credit type; types with none are left out. */
export async function heldOfSubscriptions(
  db: DbOrTx,
  subscriptionIds: readonly string[],
): Promise<{ subscriptionId: string; creditType: string; held: number }[]> {
  if (subscriptionIds.length === 0) return [];
  const rows = await queryRows<{ subscription_id: string; credit_type: string; held: number | string }>(
    db,
    sql`select subscription_id, credit_type, sum(amount)::bigint as held
          from pending_charges
         where subscription_id = any(${sql.param([...subscriptionIds])}::uuid[])
         group by subscription_id, credit_type`,
  );
  return rows.map((r) => ({ subscriptionId: r.subscription_id, creditType: r.credit_type, held: Number(r.held) }));
}
