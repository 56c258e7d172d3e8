/**
 * Usage figures, computed in SQL: debits grouped by operation, credit type, UTC day, user (the
 * debit's actor) or subscription. A refund or release counts against the group of the debit it
 * returns credits of (joined through refund_of), whenever it was written, so `credits` is what the
 * calls in the group finally cost and `estimated` what they were held at. The time window selects debits by their own time (from inclusive, to exclusive).
 *
 * Indexes (see docs/usage-queries.md for plans on a million rows): one subscription reads its debits
 * through credit_ledger_sub_created_idx and their refunds through credit_ledger_refund_of_idx; across
 * subscriptions, a time window uses credit_ledger_created_idx and the refunds come from the partial
 * refund_of index, hashed once.
 */
import { sql, type SQL } from "drizzle-orm";
import { queryRows, type DbOrTx } from "../db/database.js";

export type UsageGrouping = "OPERATION" | "TYPE" | "DAY" | "USER" | "SUBSCRIPTION";

export interface UsageRequest {
  grouping: UsageGrouping;
  /** One subscription; all subscriptions when left out. */
  subscriptionId?: string;
  /** Debits at or after this time. */
  from?: Date;
  /** Debits before this time. */
  to?: Date;
}

export interface UsageFigures {
  key: string;
  /** DEBIT entries in the group. */
  calls: number;
  /** Credits held (debited), an admin's override included: what the calls were priced at. */
  estimated: number;
  /** What the calls cost: held, net of releases and refunds. */
  credits: number;
  /** Credits refunded. */
  refunded: number;
  /** Credits released after settling at the metered actual cost. */
  released: number;
  /** credits / calls; 0 when there are no calls. */
  averageCredits: number;
}

/** The SQL expression of each grouping's key, over the debit row `d`. */
const GROUP_KEYS: Record<UsageGrouping, SQL> = {
  OPERATION: sql`coalesce(d.operation, '')`,
  TYPE: sql`d.credit_type`,
  DAY: sql`to_char(d.created_at at time zone 'UTC', 'YYYY-MM-DD')`,
  USER: sql`coalesce(d.actor_id, '')`,
  SUBSCRIPTION: sql`d.subscription_id::text`,
};

/** The usage query itself, exported so docs/usage-queries.md can EXPLAIN exactly what runs. */
export function usageQuery(request: UsageRequest): SQL {
  const debitConditions: SQL[] = [sql`d.kind = 'DEBIT'`];
  const refundConditions: SQL[] = [sql`r.refund_of is not null`, sql`r.kind in ('REFUND', 'RELEASE')`];
  if (request.subscriptionId !== undefined) {
    debitConditions.push(sql`d.subscription_id = ${request.subscriptionId}::uuid`);
    refundConditions.push(sql`r.subscription_id = ${request.subscriptionId}::uuid`);
  }
  if (request.from !== undefined) debitConditions.push(sql`d.created_at >= ${request.from.toISOString()}::timestamptz`);
  if (request.to !== undefined) debitConditions.push(sql`d.created_at < ${request.to.toISOString()}::timestamptz`);

  // Keys sort by code point ("C"), so both backends list groups in the same order whatever their locale.
  // Refunds are few next to debits: summed per debit first, then joined, so each debit row meets at
  // most one refund row and count(*) stays the number of debits.
  const key = GROUP_KEYS[request.grouping];
  return sql`
    with refunds as (
      select r.subscription_id, r.refund_of,
             coalesce(sum(r.amount) filter (where r.kind = 'REFUND'), 0)::bigint as refunded,
             coalesce(sum(r.amount) filter (where r.kind = 'RELEASE'), 0)::bigint as released
        from credit_ledger r
       where ${sql.join(refundConditions, sql` and `)}
       group by r.subscription_id, r.refund_of
    )
    select ${key} as key,
           count(*)::bigint as calls,
           coalesce(sum(-d.amount), 0)::bigint as estimated,
           coalesce(sum(-d.amount - coalesce(f.refunded, 0) - coalesce(f.released, 0)), 0)::bigint as credits,
           coalesce(sum(coalesce(f.refunded, 0)), 0)::bigint as refunded,
           coalesce(sum(coalesce(f.released, 0)), 0)::bigint as released
      from credit_ledger d
      left join refunds f on f.subscription_id = d.subscription_id and f.refund_of = d.id
     where ${sql.join(debitConditions, sql` and `)}
     group by 1
     order by ${key} collate "C"`;
}

export async function usageFigures(db: DbOrTx, request: UsageRequest): Promise<UsageFigures[]> {
  type Sum = string | number;
  const rows = await queryRows<{ key: string; calls: Sum; estimated: Sum; credits: Sum; refunded: Sum; released: Sum }>(
    db,
    usageQuery(request),
  );
  return rows.map((row) => {
    const calls = Number(row.calls);
    const credits = Number(row.credits);
    return {
      key: row.key,
      calls,
      estimated: Number(row.estimated),
      credits,
      refunded: Number(row.refunded),
      released: Number(row.released),
      averageCredits: calls === 0 ? 0 : credits / calls,
    };
  });
}
