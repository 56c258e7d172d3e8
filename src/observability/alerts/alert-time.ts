/**
 * Which clock alerts are timed on. The ledger's entries, the grants' expiries and the balance alerts
 * the ledger trigger raises (drizzle/0004) are all stamped by the database's now(), and an instance's
 * own clock may be minutes or hours off it (an outside audit ran instances at +90 s, −5 min and
 * +25 h: one stored an alert 25 hours in the future, and two on clocks 5 minutes apart each stored
 * a USAGE_SPIKE for the same spike). So the alerts this server raises are stamped with the database's
 * now() too, and a usage-spike check measures its windows, and "one alert per subscription per
 * window", on the database's clock: every instance agrees on which window a spike is in, and
 * creditAlerts' times follow its order. Only a clock a test injects (one it moves by hand) times
 * alerts instead.
 */
import { sql, type SQL } from "drizzle-orm";
import { queryRows, type DbOrTx } from "../../db/database.js";
import { systemClock, type Clock } from "../clock.js";

/** An alert's created_at, as it is stored. */
export type AlertTime =
  /** The database's now(), less how long the alert waited to be stored (more than 0 after an outage). */
  | { databaseNowLessMs: number }
  /** A time of the clock a test injected. */
  | { at: Date };

/** The database's now(): an alert stored as it is raised. */
export const DATABASE_NOW: AlertTime = Object.freeze({ databaseNowLessMs: 0 });

/** The SQL value of an alert's created_at. */
export function createdAtValue(time: AlertTime): SQL {
  return "at" in time
    ? sql`${time.at.toISOString()}::timestamptz`
    : sql`(now() - ${Math.max(0, time.databaseNowLessMs)}::float8 * interval '1 millisecond')`;
}

/**
 * True unless `clock` is one a test injected: the system clock, the production default
 * (src/observability/observability.ts), is this instance's own, which must not time alerts.
 */
export function timesAlertsOnDatabase(clock: Clock): boolean {
  return clock === systemClock;
}

/** The database's now(), in milliseconds since the epoch. */
export async function databaseNowMs(db: DbOrTx): Promise<number> {
  const [row] = await queryRows<{ ms: number | string }>(db, sql`select (extract(epoch from now()) * 1000)::float8 as ms`);
  return Math.floor(Number(row.ms));
}
