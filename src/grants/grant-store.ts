/** Reads grants, ledger draws and plan periods, batched by key so a request's DataLoaders make one query per batch. */
import { sql } from "drizzle-orm";
import { queryRows, type DbOrTx } from "../db/database.js";
import type { GrantCategoryValue } from "../db/schema/grants.js";

export interface GrantRecord {
  id: string;
  subscriptionId: string;
  creditType: string;
  category: GrantCategoryValue;
  amount: number;
  remaining: number;
  priority: number;
  effectiveAt: Date;
  expiresAt: Date | null;
  reason: string | null;
  createdAt: Date;
}

export interface GrantDrawRecord {
  grantId: string;
  amount: number;
}

interface GrantRow {
  id: string;
  subscription_id: string;
  credit_type: string;
  category: GrantCategoryValue;
  amount: number;
  remaining: number;
  priority: number;
  effective_at: Date | string;
  expires_at: Date | string | null;
  reason: string | null;
  created_at: Date | string;
}

const toDate = (value: Date | string): Date => (value instanceof Date ? value : new Date(value));

function grantFromRow(row: GrantRow): GrantRecord {
  return {
    id: row.id,
    subscriptionId: row.subscription_id,
    creditType: row.credit_type,
    category: row.category,
    amount: Number(row.amount),
    remaining: Number(row.remaining),
    priority: Number(row.priority),
    effectiveAt: toDate(row.effective_at),
    expiresAt: row.expires_at === null ? null : toDate(row.expires_at),
    reason: row.reason,
    createdAt: toDate(row.created_at),
  };
}

/**
 * The grants of these subscriptions in spending order (priority, earliest expiry with never-expiring
 * last, oldest). Without `includeSpent`, only those that can still be spent: credits left, not expired.
 */
export async function grantsOfSubscriptions(db: DbOrTx, subscriptionIds: readonly string[], includeSpent: boolean): Promise<GrantRecord[]> {
  if (subscriptionIds.length === 0) return [];
  const spendable = includeSpent ? sql`` : sql`and not exhausted and (expires_at is null or expires_at > now())`;
  const rows = await queryRows<GrantRow>(
    db,
    sql`select id, subscription_id, credit_type, category, amount, remaining, priority, effective_at, expires_at, reason, created_at
          from credit_grants
         where subscription_id = any(${sql.param([...subscriptionIds])}::uuid[]) ${spendable}
         order by subscription_id, credit_type, priority, expires_at, created_at, seq`,
  );
  return rows.map(grantFromRow);
}

/** The draws of these ledger entries, by entry id. */
export async function drawsOfEntries(
  db: DbOrTx,
  entries: readonly { subscriptionId: string; entryId: string }[],
): Promise<Map<string, GrantDrawRecord[]>> {
  const result = new Map<string, GrantDrawRecord[]>();
  if (entries.length === 0) return result;
  const rows = await queryRows<{ id: string; draws: { grantId: string; amount: number }[] | string }>(
    db,
    sql`select l.id, l.draws
          from credit_ledger l
          join unnest(${sql.param(entries.map((e) => e.subscriptionId))}::uuid[], ${sql.param(entries.map((e) => e.entryId))}::uuid[])
               as k(subscription_id, id)
            on l.subscription_id = k.subscription_id and l.id = k.id`,
  );
  for (const row of rows) {
    const draws = typeof row.draws === "string" ? (JSON.parse(row.draws) as GrantDrawRecord[]) : row.draws;
    result.set(row.id, draws.map((d) => ({ grantId: d.grantId, amount: Number(d.amount) })));
  }
  return result;
}

/** End of the current plan period of these subscriptions, when they are on a plan that grants. */
export async function periodEndsOfSubscriptions(db: DbOrTx, subscriptionIds: readonly string[]): Promise<Map<string, Date>> {
  if (subscriptionIds.length === 0) return new Map();
  const rows = await queryRows<{ subscription_id: string; period_end: Date | string }>(
    db,
    sql`select subscription_id, period_end from plan_periods where subscription_id = any(${sql.param([...subscriptionIds])}::uuid[])`,
  );
  return new Map(rows.map((r) => [r.subscription_id, toDate(r.period_end)]));
}
