/**
 * A write that gives up waiting for a row lock: run in a transaction whose lock_timeout is set with
 * SET LOCAL (set_config(…, true)), so it holds for that transaction only. A session SET or a startup
 * parameter would not do: through a transaction-mode pooler (PgBouncer, Supabase's 6543) a session
 * setting stays on a server connection that other clients' transactions then get, and startup
 * parameters are not passed on; SET LOCAL ends with the transaction on any route.
 *
 * For background work that visits many customers' rows one after another (the recovery pass, grant
 * expiry, plan renewals): one
 * row locked by a long transaction elsewhere (a psql session left open, a stuck client) must cost it
 * the bound, not the lifetime of that transaction, while the other customers wait behind it. The
 * write fails with SQLSTATE 55P03 (lock_not_available) and changes nothing; the caller leaves that
 * row for its next run.
 *
 * PGlite accepts the setting (and drops it with the transaction) but never needs it: its one
 * connection runs one transaction at a time, so no statement of it ever waits for a row lock.
 */
import { sql } from "drizzle-orm";
import type { DbOrTx, Transaction } from "./database.js";
import { sqlState } from "./errors.js";

/** SQLSTATE lock_not_available: a lock_timeout expired (or a NOWAIT lock was taken). */
export const LOCK_NOT_AVAILABLE = "55P03";

/** lock_timeout is an int of milliseconds (0 would mean no bound): a longer bound is PostgreSQL's longest. */
const LONGEST_LOCK_TIMEOUT_MS = 2_147_483_647;

/**
 * The longest background maintenance (the recovery pass's refunds, grant expiry, plan renewals) waits
 * for a customer's row lock before it leaves that row for its next run. The server's own
 * transactions hold a balance row for milliseconds at most (a debit about 0.3 ms, a coalesced batch
 * or a plan renewal a few ms), so even a long queue of them on a hot subscription clears far within
 * 3 s, and a busy but healthy balance is not taken for a locked one; a lock held longer is a
 * transaction outside the server (a psql session, a stuck client) that may last minutes. Each
 * balance found locked costs a pass this much once, so one locked balance still lets the pass end
 * within RECOVERY_INTERVAL (5 s by default).
 */
export const MAINTENANCE_LOCK_TIMEOUT_MS = 3_000;

export async function writeWithLockTimeout<T>(db: DbOrTx, timeoutMs: number, write: (tx: Transaction) => Promise<T>): Promise<T> {
  const bound = String(Math.min(Math.max(1, Math.round(timeoutMs)), LONGEST_LOCK_TIMEOUT_MS));
  return db.transaction(async (tx) => {
    await tx.execute(sql`select set_config('lock_timeout', ${bound}, true)`);
    return write(tx);
  });
}

/** Whether a write failed because it waited for a lock longer than its lock_timeout (another session holds the lock). */
export function lockTimedOut(err: unknown): boolean {
  return sqlState(err) === LOCK_NOT_AVAILABLE;
}
