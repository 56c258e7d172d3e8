/**
 * Usage figures, computed in SQL: debits grouped by operation, credit type, day (in a time zone,
 * UTC by default), user (the debit's actor) or subscription, and optionally within each group by a
 * second of these (`thenBy`, the bucket's subKey). A refund or release counts against the group of
 * the debit it returns credits of (joined through refund_of), whenever it was written, so `credits`
 * is what the calls in the group finally cost and `estimated` what they were held at. The time
 * window selects debits by their own time (from inclusive, to exclusive).
 *
 * The returns read are bounded by the window, not by the subscription's history (an outside audit:
 * a 10-second window of a subscription with 120k entries took 342 ms, reading all its 31k returns):
 * with a window, only returns of the window's debits, written at or after `from`, are summed.
 *
 * Indexes (see docs/usage-queries.md for the plans): one subscription reads its debits through
 * credit_ledger_sub_created_idx (with a window) or credit_ledger_pk; their returns, for a short
 * window, one probe per debit of credit_ledger_returns_idx (subscription_id, refund_of), for a long
 * one that index read once and hashed; across subscriptions, a time window uses
 * credit_ledger_created_idx for the debits and the returns alike.
 */
import { sql, type SQL } from "drizzle-orm";
import { queryRows, type DbOrTx } from "../db/database.js";

export type UsageGrouping = "OPERATION" | "TYPE" | "DAY" | "USER" | "SUBSCRIPTION";

export interface UsageRequest {
  grouping: UsageGrouping;
  /** A second grouping inside the first; its key is the bucket's subKey. */
  thenBy?: UsageGrouping;
  /** IANA name of the zone whose calendar days DAY counts; the caller has checked it. UTC when left out. */
  timeZone?: string;
  /** One subscription; all subscriptions when left out. */
  subscriptionId?: string;
  /** Debits at or after this time. */
  from?: Date;
  /** Debits before this time. */
  to?: Date;
}

export interface UsageFigures {
  key: string;
  /** The thenBy group; null without thenBy. */
  subKey: string | null;
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

/** The SQL expression of a grouping's key, over the debit row `d`. */
function groupKey(grouping: UsageGrouping, timeZone: string): SQL {
  switch (grouping) {
    case "OPERATION":
      return sql`coalesce(d.operation, '')`;
    case "TYPE":
      return sql`d.credit_type`;
    case "DAY":
      return sql`to_char(d.created_at at time zone ${timeZone}::text, 'YYYY-MM-DD')`;
    case "USER":
      return sql`coalesce(d.actor_id, '')`;
    case "SUBSCRIPTION":
      return sql`d.subscription_id::text`;
  }
}

/**
 * With a window, the returns that can meet a debit of it, so the refunds part reads those rather
 * than every return of the subscription (or of all subscriptions). Both conditions only drop returns
 * the left join would have dropped anyway:
 *  - `created_at >= from`: every entry's created_at is the database's now(), the start of the
 *    transaction that wrote it (no writer sets it), and a return is written after its debit: its
 *    writer (the settlement, the recovery pass, refundCharge) starts its statement or transaction
 *    once it has read the committed debit's id, or writes it in the debit's own transaction (the
 *    same now()). So a return of a debit at or after `from` is at or after `from` too. (A database
 *    clock stepped back between the two would break this, as it breaks every window.) No bound on
 *    the other side: a debit before `to` may be refunded any time later.
 *  - `(subscription_id, refund_of)` among the window's debits: what the join matches on. For a short
 *    window the planner probes credit_ledger_returns_idx once per debit; for a long one it hashes.
 * Without a window every return may count, and the semi-join would read every debit twice.
 */
function windowReturns(request: UsageRequest, debitConditions: SQL[]): SQL[] {
  const conditions: SQL[] = [];
  if (request.from !== undefined) conditions.push(sql`r.created_at >= ${request.from.toISOString()}::timestamptz`);
  conditions.push(
    sql`(r.subscription_id, r.refund_of) in (select d.subscription_id, d.id from credit_ledger d where ${sql.join(debitConditions, sql` and `)})`,
  );
  return conditions;
}

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
  if (request.from !== undefined || request.to !== undefined) refundConditions.push(...windowReturns(request, debitConditions));

  // Keys sort by code point ("C"), so both backends list groups in the same order whatever their locale.
  // Refunds are few next to debits: summed per debit first, then joined, so each debit row meets at
  // most one refund row and count(*) stays the number of debits. The buckets are sorted outside the
  // grouping, so the day key's time-zone parameter is not repeated in an ORDER BY expression.
  const timeZone = request.timeZone ?? "UTC";
  const key = groupKey(request.grouping, timeZone);
  const subKey = request.thenBy === undefined ? sql`null::text` : groupKey(request.thenBy, timeZone);
  return sql`
    with refunds as (
      select r.subscription_id, r.refund_of,
             coalesce(sum(r.amount) filter (where r.kind = 'REFUND'), 0)::bigint as refunded,
             coalesce(sum(r.amount) filter (where r.kind = 'RELEASE'), 0)::bigint as released
        from credit_ledger r
       where ${sql.join(refundConditions, sql` and `)}
       group by r.subscription_id, r.refund_of
    )
    select * from (
      select ${key} as key,
             ${subKey} as sub_key,
             count(*)::bigint as calls,
             coalesce(sum(-d.amount), 0)::bigint as estimated,
             coalesce(sum(-d.amount - coalesce(f.refunded, 0) - coalesce(f.released, 0)), 0)::bigint as credits,
             coalesce(sum(coalesce(f.refunded, 0)), 0)::bigint as refunded,
             coalesce(sum(coalesce(f.released, 0)), 0)::bigint as released
        from credit_ledger d
        left join refunds f on f.subscription_id = d.subscription_id and f.refund_of = d.id
       where ${sql.join(debitConditions, sql` and `)}
       group by 1, 2
    ) buckets
    order by key collate "C", sub_key collate "C"`;
}

export async function usageFigures(db: DbOrTx, request: UsageRequest): Promise<UsageFigures[]> {
  type Sum = string | number;
  const rows = await queryRows<{ key: string; sub_key: string | null; calls: Sum; estimated: Sum; credits: Sum; refunded: Sum; released: Sum }>(
    db,
    usageQuery(request),
  );
  return rows.map((row) => {
    const calls = Number(row.calls);
    const credits = Number(row.credits);
    return {
      key: row.key,
      subKey: row.sub_key,
      calls,
      estimated: Number(row.estimated),
      credits,
      refunded: Number(row.refunded),
      released: Number(row.released),
      averageCredits: calls === 0 ? 0 : credits / calls,
    };
  });
}
