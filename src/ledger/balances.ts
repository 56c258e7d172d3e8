/** Reads balances. Batched by subscription so a request's DataLoader makes one query per batch. */
import { sql } from "drizzle-orm";
import { queryRows } from "../db/database.js";
import type { DbOrTx } from "../db/database.js";

export interface BalanceRecord {
  subscriptionId: string;
  creditType: string;
  balance: number;
  updatedAt: Date;
}

/**
 * The balances of the subscriptions, as credits available: what the balance row holds less what is
 * left of grants that have expired, which the recovery pass removes (an EXPIRATION entry) within
 * RECOVERY_INTERVAL and which no hold may count on meanwhile (docs/grants.md). Read any other way, a
 * balance would show credits a call is refused (402) for, in the seconds after a grant expired or a
 * plan period ended.
 */
export async function balancesOfSubscriptions(db: DbOrTx, subscriptionIds: readonly string[]): Promise<BalanceRecord[]> {
  if (subscriptionIds.length === 0) return [];
  const rows = await queryRows<{ subscription_id: string; credit_type: string; balance: number | string; updated_at: Date | string }>(
    db,
    sql`select b.subscription_id, b.credit_type, b.balance - coalesce(e.expired, 0) as balance, b.updated_at
          from credit_balances b
          left join lateral (
            select sum(g.remaining) as expired from credit_grants g
             where g.subscription_id = b.subscription_id and g.credit_type = b.credit_type
               and not g.exhausted and g.expires_at <= now()) e on true
         where b.subscription_id = any(${sql.param([...subscriptionIds])}::uuid[])
         order by b.subscription_id, b.credit_type`,
  );
  return rows.map((r) => ({
    subscriptionId: r.subscription_id,
    creditType: r.credit_type,
    balance: Number(r.balance),
    updatedAt: new Date(r.updated_at),
  }));
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
