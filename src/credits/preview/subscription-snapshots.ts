/**
 * Reads a subscription with its balances for creditPreview, coalescing concurrent previews into one
 * query. A preview is a read that clients may send before every call, so it must cost about as much
 * as a request that does nothing: one round trip per preview would make the database its limit.
 * While a read is in flight, newly arriving previews queue; when it returns, the whole queue goes out
 * as the next read. Idle, a preview's read leaves at once, so nothing waits for a timer. Every read
 * starts after the previews it answers arrived, so each sees balances at least as new as its request.
 */
import { sql } from "drizzle-orm";
import { queryRows, type Database, type DbOrTx } from "../../db/database.js";
import { retryOnLostConnection } from "../../db/lost-connection-retry.js";
import type { BalanceRecord } from "../../ledger/balances.js";
import type { SubscriptionRecord } from "../../subscriptions/subscription-store.js";

export interface SubscriptionSnapshot {
  subscription: SubscriptionRecord;
  balances: BalanceRecord[];
  /**
   * Per credit type, credits of grants that have expired but that the expiry pass has not removed
   * from the balance yet: no hold may spend them. Empty nearly always.
   */
  expiredUnswept: Map<string, number>;
}

/** Reads in flight at once; the rest of the queue waits for one of them. */
const MAX_READS_IN_FLIGHT = 2;
/** Subscriptions per read at most, so one statement stays small. */
const MAX_IDS_PER_READ = 500;

interface Waiter {
  resolve(snapshot: SubscriptionSnapshot | undefined): void;
  reject(error: unknown): void;
}

/** A subscription as the read returns it (JSON): [id, owner, plan, status, status reason, created at, updated at]. */
type SubscriptionJson = [string, string, string, SubscriptionRecord["status"], string | null, string, string];
/** A balance as the read returns it (JSON): [subscription id, credit type, balance, updated at]. */
type BalanceJson = [subscriptionId: string, creditType: string, balance: number, updatedAt: string];
/** Expired credits still in a balance, as the read returns them (JSON): [subscription id, credit type, credits]. */
type ExpiredJson = [subscriptionId: string, creditType: string, expired: number];

/**
 * One statement for a batch: `credit_preview_snapshots($1)` (drizzle/0011_preview_snapshots.sql,
 * 0016_balance_room.sql) answers one JSON value, [subscriptions, balances, expired credits still in a
 * balance] (each list null when empty), which the driver
 * parses natively: no row per subscription or balance to parse and map. Ids must be well-formed
 * UUIDs, none repeated.
 *
 * The read is a server-side function for its plan. It is sent unnamed, never as a named prepared
 * statement: behind a transaction-mode pooler (PgBouncer, Supabase's port 6543) a name prepared on
 * one server connection is missing, or already taken, on the next ("prepared statement … does not
 * exist / already exists": 8 to 43 of 200 concurrent previews failed). Sent as a bare SELECT, the
 * read was parsed and planned at every execution; PL/pgSQL caches the plan of the query inside the
 * function in each server session, whichever client connection the pooler lends
 * (bench/snapshot-read-prepared.ts measures the shapes).
 */
export async function readSubscriptionSnapshots(db: DbOrTx, ids: readonly string[]): Promise<Map<string, SubscriptionSnapshot>> {
  // A read: sent again when its connection is lost (a killed backend, a restart).
  const [row] = await retryOnLostConnection(() =>
    queryRows<{ snapshots: unknown }>(db, sql`select credit_preview_snapshots(${sql.param([...ids])}::uuid[]) as snapshots`),
  );
  // PGlite and node-postgres both parse json columns; a driver that did not would hand back text.
  const parsed = typeof row?.snapshots === "string" ? JSON.parse(row.snapshots) : row?.snapshots;
  const [subscriptions, balances, expired] = (parsed ?? [null, null, null]) as [
    SubscriptionJson[] | null,
    BalanceJson[] | null,
    ExpiredJson[] | null | undefined,
  ];
  const found = new Map<string, SubscriptionSnapshot>();
  for (const [id, ownerId, plan, status, statusReason, createdAt, updatedAt] of subscriptions ?? []) {
    const subscription = { id, ownerId, plan, status, statusReason, createdAt: new Date(createdAt), updatedAt: new Date(updatedAt) };
    found.set(id, { subscription: subscription satisfies Required<SubscriptionRecord>, balances: [], expiredUnswept: new Map() });
  }
  // In credit-type order already: each subscription's list keeps it.
  for (const [subscriptionId, creditType, balance, updatedAt] of balances ?? []) {
    found.get(subscriptionId)?.balances.push({ subscriptionId, creditType, balance, updatedAt: new Date(updatedAt) });
  }
  for (const [subscriptionId, creditType, credits] of expired ?? []) {
    found.get(subscriptionId)?.expiredUnswept.set(creditType, credits);
  }
  return found;
}

export class SubscriptionSnapshotReader {
  private queue = new Map<string, Waiter[]>();
  private inFlight = 0;
  private scheduled = false;

  /** `read` is replaceable so tests can count and fail reads; the default is readSubscriptionSnapshots. */
  constructor(
    private readonly db: Database,
    private readonly read: typeof readSubscriptionSnapshots = readSubscriptionSnapshots,
  ) {}

  /** The subscription with its balances, or undefined when it does not exist. `id` must be a well-formed UUID. */
  load(id: string): Promise<SubscriptionSnapshot | undefined> {
    return new Promise((resolve, reject) => {
      const waiters = this.queue.get(id);
      if (waiters) waiters.push({ resolve, reject });
      else this.queue.set(id, [{ resolve, reject }]);
      // Loads made while the event loop handles one batch of I/O (often many requests at once under
      // load) share a read: it leaves right after that batch, not after a timer.
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          this.dispatch();
        });
      }
    });
  }

  private dispatch(): void {
    while (this.inFlight < MAX_READS_IN_FLIGHT && this.queue.size > 0) {
      const batch = new Map<string, Waiter[]>();
      for (const [id, waiters] of this.queue) {
        if (batch.size >= MAX_IDS_PER_READ) break;
        batch.set(id, waiters);
      }
      for (const id of batch.keys()) this.queue.delete(id);
      this.inFlight++;

      this.read(this.db, [...batch.keys()])
        .then(
          (found) => {
            for (const [id, waiters] of batch) for (const w of waiters) w.resolve(found.get(id));
          },
          (err: unknown) => {
            for (const waiters of batch.values()) for (const w of waiters) w.reject(err);
          },
        )
        .finally(() => {
          this.inFlight--;
          this.dispatch();
        });
    }
  }
}

const readers = new WeakMap<Database, SubscriptionSnapshotReader>();

/** The reader of one database handle, shared by every request of the process. */
export function subscriptionSnapshotReader(db: Database): SubscriptionSnapshotReader {
  let reader = readers.get(db);
  if (!reader) {
    reader = new SubscriptionSnapshotReader(db);
    readers.set(db, reader);
  }
  return reader;
}
