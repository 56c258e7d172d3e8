/**
 * One page of a subscription's ledger, newest first, by keyset pagination on `seq`: a page after a
 * cursor is "seq below that of the entry the cursor names", so entries written while a client pages
 * through appear at the top and never shift, duplicate or hide the entries of later pages. Cursors
 * name an entry by its id, not its seq (src/util/cursor.ts): seq counts every customer's entries.
 * The scan walks credit_ledger_sub_seq_idx (subscription_id, seq) backwards and stops after
 * `first + 1` matches; across subscriptions (an admin's view) it walks credit_ledger_seq_idx the
 * same way. The cursor's entry is found in the same statement by credit_ledger_id_idx, so its seq is
 * a run-time value: the planner then picks between the two indexes as it did for a literal seq.
 */
import { sql, type SQL } from "drizzle-orm";
import { queryRows, type DbOrTx } from "../db/database.js";
import type { LedgerKindValue } from "../db/schema/ledger.js";
import { entryFromRow, LEDGER_RETURNING, type LedgerEntryRecord, type LedgerRow } from "./entry.js";

export interface LedgerPageFilter {
  creditType?: string;
  kinds?: readonly LedgerKindValue[];
  operation?: string;
  /** Inclusive. */
  from?: Date;
  /** Exclusive. */
  to?: Date;
}

export interface LedgerPageRequest {
  /** One subscription; every subscription when left out. */
  subscriptionId?: string;
  filter?: LedgerPageFilter;
  /** Page size; the caller has checked its bounds. */
  first: number;
  /** Only entries older than this entry (the previous page's last one), which must be in the listing. */
  afterId?: string;
}

export interface LedgerPage {
  entries: LedgerEntryRecord[];
  hasNextPage: boolean;
}

/**
 * The page, or undefined when `afterId` names no entry of the listing (another subscription's, or
 * none at all): a cursor must never list from a place outside what the caller may read.
 */
export async function ledgerPage(db: DbOrTx, request: LedgerPageRequest): Promise<LedgerPage | undefined> {
  const conditions = pageConditions(request);
  if (request.afterId === undefined) return toPage(await queryRows<LedgerRow>(db, newestFirst(conditions, request.first)), request.first);
  // One row per page entry, or one row of nulls when the anchor exists and nothing older matches:
  // no row at all means the cursor's entry is not in this listing. `limit 1`: an id is unique only
  // with its subscription (credit_ledger_pk), and an admin's listing spans them.
  const rows = await queryRows<LedgerRow | NullRow>(
    db,
    sql`select listed.*
          from (select seq from credit_ledger
                 where id = ${request.afterId}::uuid
                   ${request.subscriptionId !== undefined ? sql`and subscription_id = ${request.subscriptionId}::uuid` : sql``}
                 limit 1) anchor
          left join lateral (${newestFirst([...conditions, sql`seq < anchor.seq`], request.first)}) listed on true`,
  );
  if (rows.length === 0) return undefined;
  return toPage(rows.filter((row): row is LedgerRow => row.id !== null), request.first);
}

/** The row of a left join that found no entry after the anchor. */
type NullRow = { id: null };

function pageConditions(request: LedgerPageRequest): SQL[] {
  const { filter = {} } = request;
  const conditions: SQL[] = [];
  if (request.subscriptionId !== undefined) conditions.push(sql`subscription_id = ${request.subscriptionId}::uuid`);
  if (filter.creditType !== undefined) conditions.push(sql`credit_type = ${filter.creditType}`);
  if (filter.kinds !== undefined) conditions.push(sql`kind = any(${sql.param([...filter.kinds])}::text[])`);
  if (filter.operation !== undefined) conditions.push(sql`operation = ${filter.operation}`);
  if (filter.from !== undefined) conditions.push(sql`created_at >= ${filter.from.toISOString()}::timestamptz`);
  if (filter.to !== undefined) conditions.push(sql`created_at < ${filter.to.toISOString()}::timestamptz`);
  return conditions;
}

/** One row more than the page tells whether another page follows, without a count. */
function newestFirst(conditions: SQL[], first: number): SQL {
  return sql`select ${sql.raw(LEDGER_RETURNING)}
               from credit_ledger
              where ${conditions.length > 0 ? sql.join(conditions, sql` and `) : sql`true`}
              order by seq desc
              limit ${first + 1}::int`;
}

function toPage(rows: LedgerRow[], first: number): LedgerPage {
  return { entries: rows.slice(0, first).map(entryFromRow), hasNextPage: rows.length > first };
}
