/**
 * Reads a subscription with its balances for creditPreview, coalescing concurrent previews into one
 * query. A preview is a read that clients may send before every call, so it must cost about as much
 * as a request that does nothing: one round trip per preview would make the database its limit.
 * While a read is in flight, newly arriving previews queue; when it returns, the whole queue goes out
 * as the next read. Idle, a preview's read leaves at once, so nothing waits for a timer. Every read
 * starts after the previews it answers arrived, so each sees balances at least as new as its request.
 */
import { sql } from "drizzle-orm";
import { queryRows, type Database } from "../../db/database.js";
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

interface SnapshotRow {
  id: string;
  owner_id: string;
  plan: string;
  status: SubscriptionRecord["status"];
  status_reason: string | null;
  created_at: Date | string;
  updated_at: Date | string;
  credit_type: string | null;
  balance: number | string | null;
  balance_updated_at: Date | string | null;
}

const asDate = (value: Date | string): Date => (value instanceof Date ? value : new Date(value));

/**
 * One statement: the subscriptions and all their balances. Ids must be well-formed UUIDs. Written as
 * plain SQL with the ids as one array parameter: the text never changes, and building it costs a
 * fraction of the query builder's time on a path that runs for every preview.
 */
export async function readSubscriptionSnapshots(db: Database, ids: readonly string[]): Promise<Map<string, SubscriptionSnapshot>> {
  const rows = await queryRows<SnapshotRow>(
    db,
    sql`select s.id, s.owner_id, s.plan, s.status, s.status_reason, s.created_at, s.updated_at,
               b.credit_type, b.balance, b.updated_at as balance_updated_at
          from billing_subscriptions s
          left join credit_balances b on b.subscription_id = s.id
         where s.id = any(${sql.param([...ids])}::uuid[])
         order by s.id, b.credit_type`,
  );
  const found = new Map<string, SubscriptionSnapshot>();
  for (const row of rows) {
    let snapshot = found.get(row.id);
    if (!snapshot) {
      // `satisfies` makes a new subscription column a compile error here rather than a missing field.
      const subscription = {
        id: row.id,
        ownerId: row.owner_id,
        plan: row.plan,
        status: row.status,
        statusReason: row.status_reason,
        createdAt: asDate(row.created_at),
        updatedAt: asDate(row.updated_at),
      } satisfies Required<SubscriptionRecord>;
      snapshot = { subscription, balances: [] };
      found.set(row.id, snapshot);
    }
    if (row.credit_type !== null && row.balance !== null && row.balance_updated_at !== null) {
      snapshot.balances.push({
        subscriptionId: row.id,
        creditType: row.credit_type,
        balance: Number(row.balance),
        updatedAt: asDate(row.balance_updated_at),
      });
    }
  }
  return found;
}

export class SubscriptionSnapshotReader {
  private queue = new Map<string, Waiter[]>();
  private inFlight = 0;
  private scheduled = false;

  constructor(private readonly db: Database) {}

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

      readSubscriptionSnapshots(this.db, [...batch.keys()])
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
