/**
 * This instance's lease (DESIGN.md, "Retries and crashes"): a row in instance_leases that it renews
 * every INSTANCE_LEASE_TTL / 3. Every hold records the lease it was taken under, and the recovery pass
 * of any instance refunds the open holds of a lease that expired, so a killed server's holds come
 * back within about one TTL plus one RECOVERY_INTERVAL instead of CHARGE_SETTLE_TIMEOUT.
 *
 * Expiry is judged by the database's clock, in both places (renewal and recovery), so instances'
 * clocks never need to agree. Locally, the lease is trusted only until the start of its last
 * successful renewal plus the TTL, less a third: a hold is never recorded under a lease this process
 * is not sure of. Renewal only extends a lease that has not expired; a lease found expired (a long
 * pause, the database unreachable for longer than the TTL, or recovery already at work) is never
 * revived: a new one, with a new id, is taken before the next hold. The old holds were (or will be)
 * refunded; their late settlements are recorded and never charged (observer.lateSettlement).
 *
 * A clean shutdown ends the lease at once (release()) instead of letting it lapse: the holds of calls
 * still running then are refunded by the closing instance's last recovery pass (createCredits'
 * close()), not left pending for another instance to find a TTL later, or forever without one.
 */
import { randomUUID } from "node:crypto";
import { sql } from "drizzle-orm";
import type { Logger } from "pino";
import { queryRows, type Database } from "../db/database.js";

/** A failed renewal is tried again after this long, doubling while it keeps failing, up to the renewal period. */
const RENEWAL_RETRY_MS = 500;

export interface InstanceLease {
  /** The id of a lease this instance surely holds; renews it, or takes a new one, first when needed. */
  current(): Promise<string>;
  /**
   * The database found lease `id` expired (a hold statement was refused under it): it is no longer
   * trusted, and the next `current()` renews it or, as it has expired, takes a new one.
   */
  expired(id: string): void;
  /**
   * Stops renewing: the row expires by itself, a TTL later. After it, current() refuses (nothing is
   * held under a lease no longer renewed). For a start that failed; a clean close uses release().
   */
  stop(): Promise<void>;
  /**
   * Clean shutdown: stops renewing, and ends the lease in the database now, so that every hold still
   * recorded under it is at once one the recovery pass refunds. Resolves to the id of the lease it
   * ended (undefined if none was taken). Throws if the database does not answer: the lease then
   * lapses by itself.
   */
  release(): Promise<string | undefined>;
}

export interface InstanceLeaseOptions {
  db: Database;
  ttlMs: number;
  logger: Logger;
}

export function startInstanceLease(options: InstanceLeaseOptions): InstanceLease {
  const { db, ttlMs } = options;
  const log = options.logger.child({ component: "instance-lease" });
  const renewEveryMs = Math.max(1, Math.floor(ttlMs / 3));
  let id: string | undefined;
  /** performance.now() until which the lease is surely ours (renewal start + TTL - TTL/3). */
  let trustedUntil = 0;
  let renewing: Promise<string> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  async function renewOrTake(): Promise<string> {
    const started = performance.now();
    if (id !== undefined && (await extend(db, id, ttlMs))) {
      trustedUntil = started + ttlMs - renewEveryMs;
      return id;
    }
    if (id !== undefined) log.warn({ event: "lease.lost", instanceId: id }, "instance lease expired; taking a new one (its open holds are refunded by recovery)");
    const fresh = randomUUID();
    await take(db, fresh, ttlMs);
    id = fresh;
    trustedUntil = started + ttlMs - renewEveryMs;
    log.info({ event: "lease.taken", instanceId: id, ttlMs }, "instance lease taken");
    return id;
  }

  function renew(): Promise<string> {
    renewing ??= renewOrTake().finally(() => (renewing = undefined));
    return renewing;
  }

  let failuresInARow = 0;
  function schedule(delayMs: number): void {
    if (stopped) return;
    timer = setTimeout(() => {
      renew()
        .then(() => {
          failuresInARow = 0;
          schedule(renewEveryMs);
        })
        .catch((err: unknown) => {
          failuresInARow++;
          log.error({ event: "lease.renew_failed", instanceId: id, failuresInARow, err }, "instance lease renewal failed; retried");
          // Soon, not a whole renewal period later: the lease must be renewed before it stops being
          // trusted, or the next hold waits for the renewal. Backing off to the renewal period
          // while the database stays away.
          schedule(Math.min(renewEveryMs, RENEWAL_RETRY_MS * 2 ** (failuresInARow - 1)));
        });
    }, delayMs);
    timer.unref();
  }
  // Taken at start, so the first call does not wait for it.
  schedule(0);

  async function stop(): Promise<void> {
    stopped = true;
    trustedUntil = 0;
    clearTimeout(timer);
    await renewing?.catch(() => undefined);
  }

  return {
    async current() {
      if (stopped) throw new Error("the instance lease is stopped: the server is shutting down, nothing is held");
      if (id !== undefined && performance.now() < trustedUntil) return id;
      return renew();
    },
    expired(expiredId) {
      if (expiredId === id) trustedUntil = 0;
    },
    stop,
    async release() {
      await stop();
      if (id === undefined) return undefined;
      await end(db, id);
      log.info({ event: "lease.released", instanceId: id }, "instance lease ended (shutdown)");
      return id;
    },
  };
}

/** Ends a lease now (by the database's clock, as every expiry is judged): its holds are recoverable at once. */
async function end(db: Database, id: string): Promise<void> {
  await queryRows(db, sql`update instance_leases set expires_at = least(expires_at, now() - interval '1 millisecond') where id = ${id}::uuid`);
}

/** Extends a lease that has not expired yet; false if it has (or its row is gone). */
async function extend(db: Database, id: string, ttlMs: number): Promise<boolean> {
  const rows = await queryRows<{ id: string }>(
    db,
    sql`update instance_leases set expires_at = now() + ${ttlMs} * interval '1 millisecond'
         where id = ${id}::uuid and expires_at > now()
         returning id`,
  );
  return rows.length === 1;
}

async function take(db: Database, id: string, ttlMs: number): Promise<void> {
  await queryRows(db, sql`insert into instance_leases (id, expires_at) values (${id}::uuid, now() + ${ttlMs} * interval '1 millisecond')`);
}
