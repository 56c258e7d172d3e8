/** The SQL of live balance: current balances for a resync, entries by id, thresholds, and claiming balance alerts. */
import { sql, type SQL } from "drizzle-orm";
import { queryRows, type DbOrTx } from "../db/database.js";
import { entryFromRow, LEDGER_RETURNING, type LedgerEntryRecord, type LedgerRow } from "../ledger/entry.js";
import type { AlertRecord } from "../observability/alerts/alert.js";
import { ALERT_COLUMNS, alertFromRow, type AlertRow } from "../observability/alerts/alert-store.js";
import type { BalanceEvent } from "./balance-hub.js";

/** Each balance of these subscriptions with its newest ledger entry (balances without any are left out). */
export async function currentBalances(db: DbOrTx, subscriptionIds: readonly string[]): Promise<BalanceEvent[]> {
  if (subscriptionIds.length === 0) return [];
  const rows = await queryRows<{
    subscription_id: string;
    credit_type: string;
    balance: number;
    id: string;
    kind: string;
    amount: number;
    balance_after: number;
    seq: string | number;
    created_at: Date | string;
  }>(
    db,
    sql`select b.subscription_id, b.credit_type, b.balance, e.id, e.kind, e.amount, e.balance_after, e.seq, e.created_at
          from credit_balances b
          cross join lateral (
            select l.id, l.kind, l.amount, l.balance_after, l.seq, l.created_at from credit_ledger l
             where l.subscription_id = b.subscription_id and l.credit_type = b.credit_type
             order by l.seq desc limit 1) e
         where b.subscription_id = any(${sql.param([...subscriptionIds])}::uuid[])`,
  );
  return rows.map((r) => ({
    subscriptionId: r.subscription_id,
    type: r.credit_type,
    balance: Number(r.balance),
    entries: 0,
    threshold: null,
    lastEntry: {
      id: r.id,
      subscriptionId: r.subscription_id,
      creditType: r.credit_type,
      kind: r.kind,
      amount: Number(r.amount),
      balanceAfter: Number(r.balance_after),
      seq: Number(r.seq),
      createdAt: r.created_at instanceof Date ? r.created_at : new Date(r.created_at),
    },
  }));
}

export async function ledgerEntriesByIds(
  db: DbOrTx,
  refs: readonly { subscriptionId: string; id: string }[],
): Promise<LedgerEntryRecord[]> {
  if (refs.length === 0) return [];
  const rows = await queryRows<LedgerRow>(
    db,
    sql`select ${sql.raw(LEDGER_RETURNING)} from credit_ledger
         where (subscription_id, id) in (
           select * from unnest(${sql.param(refs.map((r) => r.subscriptionId))}::uuid[], ${sql.param(refs.map((r) => r.id))}::uuid[]))`,
  );
  return rows.map(entryFromRow);
}

/** Low-balance thresholds of these subscriptions' balances that have one. */
export async function thresholdsOf(
  db: DbOrTx,
  subscriptionIds: readonly string[],
): Promise<{ subscriptionId: string; creditType: string; lowBalance: number }[]> {
  if (subscriptionIds.length === 0) return [];
  const rows = await queryRows<{ subscription_id: string; credit_type: string; low_balance: number }>(
    db,
    sql`select subscription_id, credit_type, low_balance from credit_balance_thresholds
         where subscription_id = any(${sql.param([...subscriptionIds])}::uuid[]) and low_balance is not null`,
  );
  return rows.map((r) => ({ subscriptionId: r.subscription_id, creditType: r.credit_type, lowBalance: Number(r.low_balance) }));
}

/**
 * Sets (or, with null, turns off) a balance's low-balance threshold. An open alert stays open only
 * while the balance is still below the new line (or empty): otherwise the next fall below it is news
 * again, and no recovery is owed.
 */
export async function writeLowBalanceThreshold(
  db: DbOrTx,
  change: { subscriptionId: string; creditType: string; lowBalance: number | null },
): Promise<void> {
  await db.execute(sql`
    insert into credit_balance_thresholds as s (subscription_id, credit_type, low_balance, alerted)
    values (${change.subscriptionId}::uuid, ${change.creditType}, ${change.lowBalance}::int, false)
    on conflict (subscription_id, credit_type) do update
       set low_balance = excluded.low_balance,
           alerted = s.alerted and coalesce((
             select b.balance < coalesce(excluded.low_balance, 1) from credit_balances b
              where b.subscription_id = s.subscription_id and b.credit_type = s.credit_type), false),
           updated_at = now()`);
}

/**
 * Claims up to `limit` balance alerts the ledger trigger stored and nobody announced yet, oldest
 * first. Rows another instance is claiming are skipped (SKIP LOCKED), so each alert is claimed by
 * exactly one instance however many heard its notification. The batch is a MATERIALIZED CTE, taken
 * once, for the reason the relay's is (notification-relay.ts, relayStatement).
 */
export async function claimUnannouncedAlerts(db: DbOrTx, limit: number): Promise<AlertRecord[]> {
  const rows = await queryRows<AlertRow>(db, claimUnannouncedAlertsStatement(limit));
  return rows.map(alertFromRow).sort((a, b) => a.seq - b.seq);
}

export function claimUnannouncedAlertsStatement(limit: number): SQL {
  return sql`with batch as materialized (
               select id from credit_alerts where not announced order by seq limit ${limit}::int for update skip locked)
             update credit_alerts set announced = true
              where id in (select id from batch)
             returning ${ALERT_COLUMNS}`;
}

