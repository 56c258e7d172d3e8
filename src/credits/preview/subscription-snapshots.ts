/**
 * Reads a subscription with its balances for creditPreview, coalescing concurrent previews into one
 * query. A preview is a read that clients may send before every call, so it must cost about as much
 * as a request that does nothing: one round trip per preview would make the database its limit.
 * While a read is in flight, newly arriving previews queue; when it returns, the whole queue goes out
 * as the next read. Idle, a preview's read leaves at once, so nothing waits for a timer. Every read
 * starts after the previews it answers arrived, so each sees balances at least as new as its request.
 */
import { sql } from "drizzle-orm";
import type { Database } from "../../db/database.js";
import { creditBalances, billingSubscriptions } from "../../db/schema/index.js";
import type { BalanceRecord } from "../../ledger/balances.js";
import type { SubscriptionRecord } from "../../subscriptions/subscription-store.js";

export interface SubscriptionSnapshot {
  subscription: SubscriptionRecord;
  balances: BalanceRecord[];
}

/** Reads in flight at once; the rest of the queue waits for one of them. */
const MAX_READS_IN_FLIGHT = 2;
/** Subscriptions per read at most, so one statement stays small. */
const MAX_IDS_PER_READ = 500;

interface Waiter {
  resolve(snapshot: SubscriptionSnapshot | undefined): void;
  reject(error: unknown): void;
}

/** One balance as the read returns it: [credit type, balance, updated at], compact JSON. */
type BalanceJson = [creditType: string, balance: number, updatedAt: string];

/**
 * One statement for a batch. The ids come as one array parameter matched with `id = any($1)` (an
 * index scan of the subscriptions' primary key); each subscription's balances come back as one
 * compact JSON array in its row, found through the balances' primary key: one row per subscription
 * instead of one wide row per balance, which the driver parses natively. Ids must be well-formed UUIDs.
 *
 * It is sent unnamed, never as a named prepared statement: behind a transaction-mode pooler
 * (PgBouncer, Supabase's port 6543) a name prepared on one server connection is missing, or already
 * taken, on the next ("prepared statement … does not exist / already exists": 8 to 43 of 200
 * concurrent previews failed). Sent unnamed, it is planned at every read, so it is written to plan
 * cheaply: with 20,000 subscriptions and 20 ids, `id = any($1)` planned in 0.056 ms and ran in
 * 0.20 ms, where the semi-join over `unnest($1)` it replaces took 0.093 and 0.25 ms. A read answers
 * every preview that queued while the previous one ran, so under load that is microseconds per
 * preview (bench/snapshot-read-prepared.ts, docs/reliability.md).
 */
export async function readSubscriptionSnapshots(db: Database, ids: readonly string[]): Promise<Map<string, SubscriptionSnapshot>> {
  const s = billingSubscriptions;
  const b = creditBalances;
  const rows = await db
    .select({
      id: s.id,
      ownerId: s.ownerId,
      plan: s.plan,
      status: s.status,
      statusReason: s.statusReason,
      createdAt: s.createdAt,
      updatedAt: s.updatedAt,
      balances: sql<BalanceJson[] | null>`(
        select json_agg(json_build_array(${b.creditType}, ${b.balance}, ${b.updatedAt}) order by ${b.creditType})
          from ${b} where ${b.subscriptionId} = ${s.id})`,
    })
    .from(s)
    .where(sql`${s.id} = any(${sql.param([...ids])}::uuid[])`);
  const found = new Map<string, SubscriptionSnapshot>();
  for (const { balances, ...subscription } of rows) {
    // PGlite and node-postgres both parse json columns; a driver that did not would hand back text.
    const parsed: BalanceJson[] = (typeof balances === "string" ? JSON.parse(balances) : balances) ?? [];
    found.set(subscription.id, {
      subscription: subscription satisfies Required<SubscriptionRecord>,
      balances: parsed.map(([creditType, balance, updatedAt]) => ({
        subscriptionId: subscription.id,
        creditType,
        balance,
        updatedAt: new Date(updatedAt),
      })),
    });
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
