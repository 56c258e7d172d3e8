/**
 * Moves the ledger trigger's outbox rows (credit_balance_change_outbox, drizzle/0004) to NOTIFY on
 * 'credit_balance_changes'. The trigger does not NOTIFY itself because PostgreSQL serializes the
 * commits of notifying transactions, which would serialize every hold; here one small transaction
 * per tick and instance takes that lock instead. Rows are taken with SKIP LOCKED, so with many
 * instances relaying each row is announced once, and in id order within a tick. A tick that found a
 * full batch runs again at once; a failing database is retried with backoff, logged once per outage.
 * Each tick also reads the database's clock, by which the hub spaces a balance's events.
 *
 * Why not again at once after any tick that moved rows: under the bench's load that doubles the relay
 * transactions (each ~0.2-0.4 ms of PostgreSQL CPU: parsed and planned afresh, NOTIFY's commit) and
 * splits more of a call's hold and settlement into two events, for ~8 ms off the median push; the
 * slowest pushes are settlements held back by the push interval, which it does not shorten.
 */
import { sql, type SQL } from "drizzle-orm";
import type { Logger } from "pino";
import { queryRows, type DbOrTx } from "../db/database.js";
import { BALANCE_CHANNEL } from "./balance-change.js";
import type { DatabaseClock } from "./database-clock.js";

/** Outbox rows moved per transaction. */
const RELAY_BATCH = 200;
/** Longest wait after database errors. */
const MAX_BACKOFF_MS = 5_000;

/**
 * Moves up to RELAY_BATCH outbox rows to NOTIFY in one transaction; resolves to how many, and to the
 * database's clock (ms since the epoch) while the statement ran.
 */
export async function relayOutbox(db: DbOrTx): Promise<{ moved: number; databaseMs: number }> {
  const rows = await queryRows<{ n: number | string; database_ms: number | string }>(db, relayStatement());
  return { moved: Number(rows[0]?.n ?? 0), databaseMs: Number(rows[0]?.database_ms) };
}

/**
 * The relay's one statement. The batch is taken in a MATERIALIZED CTE, so it is locked and read
 * once: as `delete … where id in (select … limit … for update skip locked)` the planner was free to
 * run the subquery once per outbox row (a nested-loop semi join, which it chose when the queue
 * table's statistics said it was small, as they do right after a burst: an outside audit saw one
 * tick run for 9 minutes while 331k rows waited and no live event went out).
 */
export function relayStatement(): SQL {
  return sql`with batch as materialized (
               select id from credit_balance_change_outbox order by id limit ${RELAY_BATCH}::int for update skip locked),
             moved as (
               delete from credit_balance_change_outbox o using batch where o.id = batch.id
               returning o.id, o.payload)
             select count(pg_notify(${BALANCE_CHANNEL}, payload)) as n,
                    (extract(epoch from clock_timestamp()) * 1000)::float8 as database_ms
               from (select id, payload from moved order by id) ordered`;
}

export interface NotificationRelay {
  stop(): Promise<void>;
}

export function startNotificationRelay(options: { db: DbOrTx; intervalMs: number; logger: Logger; clock?: DatabaseClock }): NotificationRelay {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let failures = 0;

  async function tick(): Promise<void> {
    let moved = 0;
    try {
      const result = await relayOutbox(options.db);
      // Read when the answer is in: the stamp was taken before, as the clock expects.
      if (Number.isFinite(result.databaseMs)) options.clock?.observe(result.databaseMs, Date.now());
      moved = result.moved;
      if (failures > 0) options.logger.info({ event: "live.relay_restored" }, "relaying balance changes again");
      failures = 0;
    } catch (err) {
      if (failures === 0) {
        options.logger.warn({ event: "live.relay_failed", err: relayFailure(err) }, "could not relay balance changes; retrying");
      }
      failures++;
    }
    if (stopped) return;
    const delay = failures > 0 ? Math.min(MAX_BACKOFF_MS, options.intervalMs * 2 ** failures) : moved >= RELAY_BATCH ? 0 : options.intervalMs;
    timer = setTimeout(() => (running = tick()), delay);
    timer.unref();
  }

  running = tick();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}

/**
 * What a failed relay logs: the message and the driver's cause. drizzle's "Failed query: …" names
 * only the statement; why it failed (too many connections, a pool checkout timing out, a terminated
 * backend) is its cause, which an operator needs to see why live balances stalled.
 */
export function relayFailure(err: unknown): { message: string; cause?: string; code?: string } {
  if (!(err instanceof Error)) return { message: String(err) };
  const cause = (err as { cause?: unknown }).cause;
  if (!(cause instanceof Error)) return { message: err.message };
  const code = (cause as { code?: unknown }).code;
  return { message: err.message, cause: cause.message, ...(typeof code === "string" ? { code } : {}) };
}
