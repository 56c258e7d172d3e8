/**
 * credit_alerts: storing alerts and reading them back newest first. Alert times are the database's
 * now() (alert-time.ts), as are those of the balance alerts the ledger trigger stores, unless a test
 * injected a clock.
 */
import { sql, type SQL } from "drizzle-orm";
import { queryRows, type DbOrTx } from "../../db/database.js";
import type { AlertKind, AlertRecord, NewAlert } from "./alert.js";
import { createdAtValue, type AlertTime } from "./alert-time.js";

export interface AlertRow {
  id: string;
  seq: number | string;
  subscription_id: string | null;
  kind: AlertKind;
  message: string;
  details: Record<string, unknown> | string | null;
  created_at: Date | string;
}

export const ALERT_COLUMNS = sql`id, seq, subscription_id, kind, message, details, created_at`;

export function alertFromRow(row: AlertRow): AlertRecord {
  return {
    id: row.id,
    seq: Number(row.seq),
    subscriptionId: row.subscription_id,
    kind: row.kind,
    message: row.message,
    details: typeof row.details === "string" ? JSON.parse(row.details) : (row.details ?? {}),
    createdAt: row.created_at instanceof Date ? row.created_at : new Date(row.created_at),
  };
}

/**
 * Stores an alert under the id it was raised with. Safe to send again: a retry after a connection
 * lost at the commit finds the row the first attempt wrote instead of storing the alert twice.
 */
export async function insertAlert(db: DbOrTx, alert: NewAlert & { id: string }, time: AlertTime): Promise<AlertRecord> {
  const rows = await queryRows<AlertRow>(
    db,
    sql`with inserted as (
          insert into credit_alerts (id, subscription_id, kind, message, details, created_at)
          values (${alert.id}::uuid, ${alert.subscriptionId}::uuid, ${alert.kind}, ${alert.message},
                  ${JSON.stringify(alert.details)}::jsonb, ${createdAtValue(time)})
          on conflict (id) do nothing
          returning ${ALERT_COLUMNS})
        select ${ALERT_COLUMNS} from inserted
        union all
        select ${ALERT_COLUMNS} from credit_alerts where id = ${alert.id}::uuid and not exists (select 1 from inserted)`,
  );
  return alertFromRow(rows[0]);
}

/**
 * Stores a USAGE_SPIKE alert at `time` unless the subscription already has one raised in the window
 * before it (`windowMs`): at most one per subscription per window. With the database's now() for
 * `time`, every instance judges "this window" on the one clock, whatever its own says.
 * `credit_alert_spike_once` (drizzle/0014_spike_alert_function.sql) checks and inserts under a
 * transaction-scoped advisory lock on the subscription, so two instances detecting the same spike at
 * once still store one alert (a plain "insert … where not exists" would let both through under READ
 * COMMITTED); one statement, so it holds a pool connection for one round trip, and the lock is
 * released at its commit, so it is safe through a transaction-mode pooler.
 * Returns undefined when an alert of this window already exists.
 */
export async function insertSpikeAlertOncePerWindow(
  db: DbOrTx,
  alert: NewAlert & { id: string; subscriptionId: string },
  time: AlertTime,
  windowMs: number,
): Promise<AlertRecord | undefined> {
  const createdAt = createdAtValue(time);
  const rows = await queryRows<AlertRow>(
    db,
    sql`select ${ALERT_COLUMNS}
          from credit_alert_spike_once(${alert.id}::uuid, ${alert.subscriptionId}::uuid, ${alert.message},
                                       ${JSON.stringify(alert.details)}::jsonb, ${createdAt},
                                       ${createdAt} - ${windowMs}::float8 * interval '1 millisecond')`,
  );
  return rows[0] ? alertFromRow(rows[0]) : undefined;
}

export interface AlertPageRequest {
  subscriptionId?: string;
  limit: number;
}

/** Up to `limit` alerts, newest first (by seq). */
export async function listAlerts(db: DbOrTx, request: AlertPageRequest): Promise<AlertRecord[]> {
  const rows = await queryRows<AlertRow>(db, newestAlerts(alertConditions(request), request.limit));
  return rows.map(alertFromRow);
}

/**
 * Up to `limit` alerts older than the alert `afterId` (the `after` cursor's), newest first; undefined
 * when that alert is not in the listing (another subscription's, or none at all). The cursor names
 * the alert by id, not by its seq, which counts every customer's alerts (src/util/cursor.ts); its seq
 * is looked up by the primary key in the same statement.
 */
export async function listAlertsAfter(db: DbOrTx, request: AlertPageRequest & { afterId: string }): Promise<AlertRecord[] | undefined> {
  // One row per alert, or one row of nulls when the anchor exists and nothing older matches: no row
  // at all means the cursor's alert is not in this listing.
  const rows = await queryRows<AlertRow | { id: null }>(
    db,
    sql`select listed.*
          from (select seq from credit_alerts
                 where id = ${request.afterId}::uuid
                   ${request.subscriptionId !== undefined ? sql`and subscription_id = ${request.subscriptionId}::uuid` : sql``}) anchor
          left join lateral (${newestAlerts([...alertConditions(request), sql`seq < anchor.seq`], request.limit)}) listed on true`,
  );
  if (rows.length === 0) return undefined;
  return rows.filter((row): row is AlertRow => row.id !== null).map(alertFromRow);
}

function alertConditions(request: AlertPageRequest): SQL[] {
  return request.subscriptionId === undefined ? [sql`true`] : [sql`subscription_id = ${request.subscriptionId}::uuid`];
}

function newestAlerts(conditions: SQL[], limit: number): SQL {
  return sql`select ${ALERT_COLUMNS} from credit_alerts
              where ${sql.join(conditions, sql` and `)}
              order by seq desc
              limit ${limit}::int`;
}
