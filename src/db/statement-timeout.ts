/**
 * A read that PostgreSQL itself gives up on: run in a read-only transaction whose statement_timeout
 * is set with SET LOCAL (set_config(…, true)), so it holds for that transaction only. A session SET
 * or a startup parameter would not do: through a transaction-mode pooler (PgBouncer, Supabase's
 * 6543) a session setting stays on a server connection that other clients' transactions then get,
 * and startup parameters are not passed on; SET LOCAL ends with the transaction on any route.
 *
 * The database cancels the statement when the time is up, so it stops using its connection and its
 * CPU then, not when the HTTP request that asked for it ends (an outside audit saw 21 reports go on
 * for 7.5 minutes after their requests had ended).
 *
 * PGlite accepts the setting (and drops it with the transaction) but never fires it: the embedded
 * database has no timer to interrupt a statement. Its one connection is taken by whatever runs.
 */
import { sql } from "drizzle-orm";
import type { Database, Transaction } from "./database.js";
import { sqlState } from "./errors.js";

/** SQLSTATE query_canceled: a statement_timeout expired (or an operator cancelled the statement). */
const QUERY_CANCELED = "57014";

/** statement_timeout is an int of milliseconds: a longer bound is PostgreSQL's longest. */
const LONGEST_STATEMENT_TIMEOUT_MS = 2_147_483_647;

export async function readWithStatementTimeout<T>(db: Database, timeoutMs: number, read: (tx: Transaction) => Promise<T>): Promise<T> {
  const bound = String(Math.min(Math.max(1, Math.round(timeoutMs)), LONGEST_STATEMENT_TIMEOUT_MS));
  return db.transaction(
    async (tx) => {
      await tx.execute(sql`select set_config('statement_timeout', ${bound}, true)`);
      return read(tx);
    },
    { accessMode: "read only" },
  );
}

/** Whether a read failed because the database cancelled its statement (its statement_timeout expired). */
export function statementTimedOut(err: unknown): boolean {
  return sqlState(err) === QUERY_CANCELED;
}
