/** Reads balances. Batched by subscription so a request's DataLoader makes one query per batch. */
import { inArray } from "drizzle-orm";
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
