/**
 * Instance leases on PGlite and PostgreSQL (DESIGN.md, "Retries and crashes"): a hold records the
 * lease it was taken under; the recovery pass refunds the holds of an expired (or deleted) lease at
 * once, whatever their age, leaves a live lease's holds alone until CHARGE_SETTLE_TIMEOUT, and then
 * refunds them with the overdue reason (which the alerts observer turns into FAILED_TRANSACTION). A
 * lease found expired is replaced by a new id, never revived. A clean stop ends its lease at once
 * (release()), so its own last pass refunds the holds of its calls still running.
 */
import { randomUUID } from "node:crypto";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { observerOf } from "../helpers/charge-observers.js";
import { fundedSubscription } from "../helpers/test-app.js";
import { awayFor } from "../helpers/unreachable-database.js";
import { queryRows, type Database } from "../../src/db/database.js";
import type { RefundedEvent } from "../../src/credits/charge-observer.js";
import { createCoalescingChargeLedger, LedgerClosedError } from "../../src/ledger/coalescing-charge-ledger.js";
import type { HoldRequest } from "../../src/ledger/hold.js";
import { auditLedger } from "../../src/ledger/audit.js";
import { createLogger } from "../../src/observability/logger.js";
import { startInstanceLease } from "../../src/recovery/instance-lease.js";
import { RECOVERY_OVERDUE_REASON, RECOVERY_REFUND_REASON, RECOVERY_SHUTDOWN_REASON, runRecoveryPass } from "../../src/recovery/recovery-pass.js";

const silent = createLogger("silent");
const HOUR = 3_600_000;

function request(subscriptionId: string): HoldRequest {
  return {
    subscriptionId,
    creditType: "ai",
    amount: 2,
    entryId: randomUUID(),
    operation: "Mutation.runAiTask",
    estimated: 2,
    actorId: "lease-owner",
    adminOverride: false,
    requestId: `req-${randomUUID()}`,
    authorize: false,
    actorIsAdmin: false,
  };
}

async function pendingOf(db: Database, subscriptionId: string): Promise<{ entry_id: string; instance_id: string | null }[]> {
  return queryRows(db, sql`select entry_id, instance_id from pending_charges where subscription_id = ${subscriptionId}::uuid`);
}

async function refundReasons(db: Database, subscriptionId: string): Promise<string[]> {
  const rows = await queryRows<{ reason: string }>(
    db,
    sql`select reason from credit_ledger where subscription_id = ${subscriptionId}::uuid and kind = 'REFUND' order by created_at`,
  );
  return rows.map((r) => r.reason);
}


describe.each(BACKENDS)("instance leases on %s", (backend) => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase(backend);
  });
  afterAll(() => database?.dispose());

  it("a hold records its live lease and is left alone; once the lease expires it is refunded at once, whatever its age", async () => {
    const db = database.db;
    const sub = await fundedSubscription(database, "lease-owner", { ai: 20 });
    // Renewed every second: the renewal that finds the row expired takes a new lease.
    const lease = startInstanceLease({ db, ttlMs: 3_000, logger: silent });
    const ledger = createCoalescingChargeLedger(db, { instanceId: () => lease.current() });
    try {
      const [held] = await ledger.hold([request(sub)]);
      expect(held.ok).toBe(true);
      const leaseId = await lease.current();
      expect(await pendingOf(db, sub)).toEqual([{ entry_id: (held as { entryId: string }).entryId, instance_id: leaseId }]);

      // Live and young: nothing to do.
      expect((await runRecoveryPass({ db, settleTimeoutMs: HOUR, logger: silent })).refunded).toBe(0);

      // The instance dies: its lease runs out (here: made to). A hold seconds old is refunded now.
      await queryRows(db, sql`update instance_leases set expires_at = now() - interval '1 second' where id = ${leaseId}::uuid`);
      const events: RefundedEvent[] = [];
      expect(await runRecoveryPass({ db, settleTimeoutMs: HOUR, logger: silent, observer: observerOf({ refunded: (e) => void events.push(e) }) })).toMatchObject({
        refunded: 1,
        refundedCredits: 2,
      });
      expect(events.filter((e) => e.subscriptionId === sub).map((e) => e.reason)).toEqual([RECOVERY_REFUND_REASON]);
      expect(await pendingOf(db, sub)).toEqual([]);
      expect(await refundReasons(db, sub)).toEqual([RECOVERY_REFUND_REASON]);

      // The instance finds its lease expired: it takes a new one (a new id) before it holds again.
      const deadline = Date.now() + 10_000;
      while ((await lease.current()) === leaseId && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      const [again] = await ledger.hold([request(sub)]);
      expect(again.ok).toBe(true);
      const [row] = await pendingOf(db, sub);
      expect(row.instance_id).not.toBe(leaseId);
      const leases = await queryRows<{ id: string; live: boolean }>(db, sql`select id, expires_at > now() as live from instance_leases order by started_at`);
      expect(leases.find((l) => l.id === leaseId)?.live).toBe(false);
      expect(leases.find((l) => l.id === row.instance_id)?.live).toBe(true);
      expect(await pendingOf(db, sub)).toHaveLength(1);
      expect((await auditLedger(db)).ok).toBe(true);
    } finally {
      await ledger.idle();
      await lease.stop();
    }
  });

  // An outside audit: a server stopped by SIGTERM with calls longer than the grace exited with their
  // holds pending, and its lease left to lapse: refunded only once another instance saw it expire.
  it("release() (a clean stop) ends the lease at once: the stopping instance's pass refunds its open holds, with the shutdown reason, and no other instance's", async () => {
    const db = database.db;
    const sub = await fundedSubscription(database, "lease-owner", { ai: 20 });
    // An hour: only release() can end it within the test.
    const stopping = startInstanceLease({ db, ttlMs: HOUR, logger: silent });
    const other = startInstanceLease({ db, ttlMs: HOUR, logger: silent });
    const ledger = createCoalescingChargeLedger(db, { instanceId: () => stopping.current() });
    const otherLedger = createCoalescingChargeLedger(db, { instanceId: () => other.current() });
    let othersEntryId: string | undefined;
    try {
      const [held] = await ledger.hold([request(sub)]);
      const [othersHeld] = await otherLedger.hold([request(sub)]);
      const entryId = (held as { entryId: string }).entryId;
      othersEntryId = (othersHeld as { entryId: string }).entryId;
      const leaseId = await stopping.current();

      // The stop: nothing more is held, the lease is ended in the database, then the pass.
      await ledger.close();
      await expect(ledger.hold([request(sub)])).rejects.toThrow(LedgerClosedError);
      expect(await stopping.release()).toBe(leaseId);
      await expect(stopping.current()).rejects.toThrow(/stopped/);
      const events: RefundedEvent[] = [];
      await runRecoveryPass({ db, settleTimeoutMs: HOUR, logger: silent, observer: observerOf({ refunded: (e) => void events.push(e) }), stoppingInstanceId: leaseId });
      expect(events.filter((e) => e.subscriptionId === sub).map((e) => [e.entryId, e.reason])).toEqual([[entryId, RECOVERY_SHUTDOWN_REASON]]);
      expect(await pendingOf(db, sub)).toEqual([{ entry_id: othersEntryId, instance_id: await other.current() }]);
      expect(await refundReasons(db, sub)).toEqual([RECOVERY_SHUTDOWN_REASON]);

      // The call still finishes: its settlement finds the hold refunded, and charges nothing.
      expect(await ledger.settle([{ kind: "post", subscriptionId: sub, entryId, actorId: null, requestId: null }])).toEqual([{ settled: false }]);
      expect(await refundReasons(db, sub)).toEqual([RECOVERY_SHUTDOWN_REASON]);
      expect((await auditLedger(db)).ok).toBe(true);
    } finally {
      // The other instance's call ends too, so no later pass of this file finds its hold.
      if (othersEntryId) await otherLedger.settle([{ kind: "void", subscriptionId: sub, entryId: othersEntryId, reason: "test: clean up", actorId: null, requestId: null }]);
      await stopping.stop();
      await other.stop();
    }
  });

  it("a hold whose lease row is gone is refunded; one on a live lease only past CHARGE_SETTLE_TIMEOUT, with the overdue reason", async () => {
    const db = database.db;
    const sub = await fundedSubscription(database, "lease-owner", { ai: 20 });
    const lease = startInstanceLease({ db, ttlMs: 60_000, logger: silent });
    const liveLedger = createCoalescingChargeLedger(db, { instanceId: () => lease.current() });
    // An instance whose lease row is gone (deleted a day after it expired): its hold was taken while
    // the row was live (a hold under an expired or missing lease is refused).
    const ghostLease = randomUUID();
    await db.execute(sql`insert into instance_leases (id, expires_at) values (${ghostLease}::uuid, now() + interval '1 minute')`);
    const ghostLedger = createCoalescingChargeLedger(db, { instanceId: async () => ghostLease });
    try {
      const [live] = await liveLedger.hold([request(sub)]);
      const [ghost] = await ghostLedger.hold([request(sub)]);
      expect(live.ok && ghost.ok).toBe(true);
      await db.execute(sql`delete from instance_leases where id = ${ghostLease}::uuid`);

      const events: RefundedEvent[] = [];
      const observer = observerOf({ refunded: (e) => void events.push(e) });
      await runRecoveryPass({ db, settleTimeoutMs: HOUR, logger: silent, observer });
      expect(events.filter((e) => e.subscriptionId === sub).map((e) => [e.entryId, e.reason])).toEqual([[(ghost as { entryId: string }).entryId, RECOVERY_REFUND_REASON]]);

      // Past CHARGE_SETTLE_TIMEOUT (injected clock) the live instance's hold is refunded too, as overdue.
      const later = () => new Date(Date.now() + HOUR + 60_000);
      await runRecoveryPass({ db, settleTimeoutMs: HOUR, logger: silent, observer, clock: later });
      expect(events.filter((e) => e.subscriptionId === sub).map((e) => [e.entryId, e.reason])[1]).toEqual([(live as { entryId: string }).entryId, RECOVERY_OVERDUE_REASON]);
      expect(await pendingOf(db, sub)).toEqual([]);
      // Passes again: nothing is refunded twice.
      await runRecoveryPass({ db, settleTimeoutMs: HOUR, logger: silent, clock: later });
      expect((await refundReasons(db, sub)).sort()).toEqual([RECOVERY_OVERDUE_REASON, RECOVERY_REFUND_REASON].sort());
    } finally {
      await liveLedger.idle();
      await ghostLedger.idle();
      await lease.stop();
    }
  });

  it("a lease that cannot be taken while the database is away does not fail the holds waiting for it", async () => {
    // The lease shares the database, and its outages, with the holds (a kill storm, a restart):
    // taking it is retried with the hold, not a reason to fail every hold of a batch.
    const sub = await fundedSubscription(database, "lease-owner", { ai: 20 });
    const lease = startInstanceLease({ db: awayFor(database.db, 1_500), ttlMs: 60_000, logger: silent });
    const ledger = createCoalescingChargeLedger(database.db, { instanceId: () => lease.current() });
    try {
      const outcomes = (await Promise.all([ledger.hold([request(sub)]), ledger.hold([request(sub)])])).flat();
      expect(outcomes.every((o) => o.ok)).toBe(true);
      const leaseId = await lease.current();
      expect((await pendingOf(database.db, sub)).map((p) => p.instance_id)).toEqual([leaseId, leaseId]);
    } finally {
      await ledger.idle();
      await lease.stop();
    }
  });

  it("a renewal that failed is tried again within a second, not a renewal period later", async () => {
    const leaseCount = async () => Number((await queryRows<{ n: number }>(database.db, sql`select count(*)::int as n from instance_leases`))[0].n);
    const before = await leaseCount();
    // Renewed every 20 s; the first attempt (at start) meets a database away for 200 ms.
    const lease = startInstanceLease({ db: awayFor(database.db, 200), ttlMs: 60_000, logger: silent });
    try {
      const deadline = Date.now() + 1_500;
      while ((await leaseCount()) === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(await leaseCount()).toBe(before + 1);
    } finally {
      await lease.stop();
    }
  });
});
