/**
 * One page of a subscription's ledger, newest first, by keyset pagination on `seq`: a page after a
 * cursor is "seq below the cursor's", so entries written while a client pages through appear at the
 * top and never shift, duplicate or hide the entries of later pages. The scan walks
 * credit_ledger_sub_seq_idx (subscription_id, seq) backwards and stops after `first + 1` matches;
 * across subscriptions (an admin's view) it walks credit_ledger_seq_idx the same way.
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
  /** Only entries older than this seq (the previous page's last entry). */
  beforeSeq?: number;
}

export interface LedgerPage {
  entries: LedgerEntryRecord[];
  hasNextPage: boolean;
}

export async function ledgerPage(db: DbOrTx, request: LedgerPageRequest): Promise<LedgerPage> {
  const { filter = {} } = request;
  const conditions: SQL[] = [];
  if (request.subscriptionId !== undefined) conditions.push(sql`subscription_id = ${request.subscriptionId}::uuid`);
  if (request.beforeSeq !== undefined) conditions.push(sql`seq < ${request.beforeSeq}::bigint`);
  if (filter.creditType !== undefined) conditions.push(sql`credit_type = ${filter.creditType}`);
  if (filter.kinds !== undefined) conditions.push(sql`kind = any(${sql.param([...filter.kinds])}::text[])`);
  if (filter.operation !== undefined) conditions.push(sql`operation = ${filter.operation}`);
  if (filter.from !== undefined) conditions.push(sql`created_at >= ${filter.from.toISOString()}::timestamptz`);
  if (filter.to !== undefined) conditions.push(sql`created_at < ${filter.to.toISOString()}::timestamptz`);

  // One row more than the page tells whether another page follows, without a count.
  const rows = await queryRows<LedgerRow>(
    db,
    sql`select ${sql.raw(LEDGER_RETURNING)}
          from credit_ledger
         where ${conditions.length > 0 ? sql.join(conditions, sql` and `) : sql`true`}
         order by seq desc
         limit ${request.first + 1}::int`,
  );
  const hasNextPage = rows.length > request.first;
  return { entries: rows.slice(0, request.first).map(entryFromRow), hasNextPage };
}
