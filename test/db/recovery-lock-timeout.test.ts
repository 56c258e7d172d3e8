/**
 * A balance row locked by another session (an outside audit: a psql `SELECT … FOR UPDATE` left open)
 * made the recovery pass wait on it for as long as the lock was held, with every other customer's
 * refunds (and the grant expiry and plan renewals after the pass) waiting behind it. Each refund now
 * waits at most RECOVERY_LOCK_TIMEOUT_MS: the locked customer's holds are reported as failed (naming
 * the lock: SQLSTATE 55P03, lock_not_available) and stay pending, the other customer's hold is
 * refunded, and once the lock is released the next pass refunds the rest. Grant expiry, which runs
 * after the pass, is bounded the same way. PostgreSQL only: PGlite
 * has one connection, so no other session can hold a lock.
 */
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPostgresDatabase, type TestDatabase } from "../helpers/databases.js";
import { observerOf } from "../helpers/charge-observers.js";
import { holdOne } from "../helpers/ledger-commands.js";
import { captureLogLines } from "../helpers/log-lines.js";
import { postgresAvailable } from "../helpers/services.js";
import { fundedSubscription } from "../helpers/test-app.js";
import { queryRows, type Database } from "../../src/db/database.js";
import type { TransactionFailedEvent } from "../../src/credits/charge-observer.js";
import { lockTimedOut } from "../../src/db/lock-timeout.js";
import { expireDueGrants } from "../../src/grants/expiry.js";
import { grantWithTerms } from "../../src/grants/grant-credits.js";
import { auditLedger } from "../../src/ledger/audit.js";
import { runGrantMaintenance } from "../../src/grants/maintenance.js";
import { loadPlans } from "../../src/plans/plan-config.js";
import { openSubscription } from "../../src/subscriptions/subscription-store.js";
import { createLogger } from "../../src/observability/logger.js";
import { RECOVERY_LOCK_TIMEOUT_MS, runRecoveryPass, type RecoveryReport } from "../../src/recovery/recovery-pass.js";
import { createRepeatedRefundFailures } from "../../src/recovery/repeated-refund-failures.js";

const SETTLE_TIMEOUT_MS = 5 * 60_000;
/** A clock far enough ahead that every hold written now is overdue. */
const later = () => new Date(Date.now() + SETTLE_TIMEOUT_MS + 60_000);
/** Longer than one lock timeout, shorter than two: the locked balance's second hold must not wait again. */
const PASS_DEADLINE_MS = RECOVERY_LOCK_TIMEOUT_MS * 1.8;



async function hold(db: Database, subscriptionId: string): Promise<string> {
  const outcome = await holdOne(db, {
    subscriptionId,
    creditType: "ai",
    amount: 3,
    operation: "Mutation.runAiTask",
    estimated: 3,
    actorId: "lock-owner",
    adminOverride: false,
    requestId: `req-${Math.random()}`,
  });
  if (!outcome.ok) throw new Error(`hold refused: ${JSON.stringify(outcome)}`);
  return outcome.entryId;
}

async function pendingOf(db: Database, subscriptionId: string): Promise<string[]> {
  const rows = await queryRows<{ entry_id: string }>(db, sql`select entry_id from pending_charges where subscription_id = ${subscriptionId}::uuid order by entry_id`);
  return rows.map((r) => r.entry_id);
}

async function balanceOf(db: Database, subscriptionId: string): Promise<number> {
  const [row] = await queryRows<{ balance: number | string }>(db, sql`select balance from credit_balances where subscription_id = ${subscriptionId}::uuid and credit_type = 'ai'`);
  return Number(row.balance);
}

/** The pass, or a failure once it has run past `ms` (it would otherwise wait as long as the lock is held). */
async function passWithin(pass: Promise<RecoveryReport>, ms: number): Promise<{ report: RecoveryReport; elapsedMs: number }> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`the recovery pass was still waiting after ${ms} ms`)), ms)));
  try {
    const report = await Promise.race([pass, late]);
    return { report, elapsedMs: performance.now() - started };
  } finally {
    clearTimeout(timer);
  }
}

describe.skipIf(!postgresAvailable)("a recovery pass facing a balance row locked by another session, on PostgreSQL", () => {
  let database: TestDatabase;
  let locker: pg.Client;

  beforeAll(async () => {
    database = await createPostgresDatabase();
    locker = new pg.Client({ connectionString: database.url });
    await locker.connect();
  });
  afterAll(async () => {
    await locker?.end();
    await database?.dispose();
  });

  it("refunds the other customers' holds within the lock timeout, reports the locked ones, and refunds them once the lock is gone", async () => {
    const db = database.db;
    const locked = await fundedSubscription(database, "lock-owner-1", { ai: 20 });
    const free = await fundedSubscription(database, "lock-owner-2", { ai: 20 });
    // The locked customer's holds come first, so the free one's refund is queued behind them.
    const lockedHolds = [await hold(db, locked), await hold(db, locked)].sort();
    const freeHold = await hold(db, free);

    const captured = captureLogLines();
    const lines = captured.lines;
    const failed: TransactionFailedEvent[] = [];
    const refundFailures = createRepeatedRefundFailures();
    const logger = createLogger("info", captured.destination);
    const observer = observerOf({ transactionFailed: (e) => void failed.push(e) });
    const pass = () => runRecoveryPass({ db, settleTimeoutMs: SETTLE_TIMEOUT_MS, clock: later, logger, observer, refundFailures });

    await locker.query("begin");
    await locker.query("select * from credit_balances where subscription_id = $1 for update", [locked]);
    let first: { report: RecoveryReport; elapsedMs: number };
    try {
      first = await passWithin(pass(), PASS_DEADLINE_MS);
      // Still locked: the free customer's hold is refunded all the same, the locked ones wait.
      expect(await pendingOf(db, free)).toEqual([]);
      expect(await pendingOf(db, locked)).toEqual(lockedHolds);
    } finally {
      await locker.query("rollback");
    }
    expect(first.report).toMatchObject({ refunded: 1, failed: 2, stillFailing: 0 });
    expect(first.elapsedMs).toBeGreaterThanOrEqual(RECOVERY_LOCK_TIMEOUT_MS * 0.9);

    // Each locked hold is reported once, naming the lock so an operator looks for the transaction.
    expect(failed.map((e) => [e.stage, e.entryId]).sort()).toEqual(lockedHolds.map((id) => ["refund", id]));
    const refundFailed = lines.filter((l) => l.event === "recovery.refund_failed");
    expect(refundFailed.map((l) => l.entryId).sort()).toEqual(lockedHolds);
    for (const line of refundFailed) {
      expect(line).toMatchObject({ level: 50, subscriptionId: locked, sqlState: "55P03", lockNotAvailable: true, lockTimeoutMs: RECOVERY_LOCK_TIMEOUT_MS });
      expect(line.msg).toMatch(/locked by another session.*55P03 lock_not_available.*pg_stat_activity/);
    }
    expect(lines.find((l) => l.event === "recovery.refunded")).toMatchObject({ subscriptionId: free, entryId: freeHold });

    // The lock released, the next pass refunds the locked customer's holds.
    const second = await passWithin(pass(), PASS_DEADLINE_MS);
    expect(second.report).toMatchObject({ refunded: 2, failed: 0, stillFailing: 0 });
    expect(await pendingOf(db, locked)).toEqual([]);
    expect(refundFailures.size).toBe(0);
    expect([await balanceOf(db, locked), await balanceOf(db, free)]).toEqual([20, 20]);
    expect(await auditLedger(db)).toMatchObject({ ok: true, mismatches: [] });
  }, 20_000);

  it("expires the other customers' grants within the lock timeout, and the locked one's once the lock is gone", async () => {
    const db = database.db;
    const grantExpiring = (subscriptionId: string) =>
      grantWithTerms(
        db,
        { subscriptionId, creditType: "ai", kind: "GRANT", delta: 4, actorId: "test", reason: "promo", requestId: null },
        { category: "PROMOTIONAL", priority: 10, expiresAt: new Date(Date.now() + 500) },
      );
    const locked = await fundedSubscription(database, "expiry-lock-owner-1", { ai: 20 });
    const free = await fundedSubscription(database, "expiry-lock-owner-2", { ai: 20 });
    await grantExpiring(locked);
    await grantExpiring(free);
    await sleep(600);

    const failures: unknown[] = [];
    await locker.query("begin");
    await locker.query("select * from credit_balances where subscription_id = $1 for update", [locked]);
    try {
      const started = performance.now();
      const report = await expireDueGrants(db, undefined, (_balance, err) => void failures.push(err));
      expect(performance.now() - started).toBeLessThan(PASS_DEADLINE_MS);
      expect(report).toEqual({ balances: 1, expired: 1, failed: 1 });
      expect(await balanceOf(db, free)).toBe(20);
      expect(failures.map(lockTimedOut)).toEqual([true]);
    } finally {
      await locker.query("rollback");
    }
    expect(await expireDueGrants(db)).toEqual({ balances: 1, expired: 1, failed: 0 });
    expect([await balanceOf(db, locked), await balanceOf(db, free)]).toEqual([20, 20]);
    expect(await auditLedger(db)).toMatchObject({ ok: true, mismatches: [] });
  }, 20_000);

  // A re-check of the bound above: each pass met the locked subscription first again (its period
  // ended first) and spent its renewal budget waiting on it, so no one behind it was renewed while the
  // lock lasted. A subscription found locked is now renewed after the others on the next passes.
  it("renews the other customers' plans on the next pass while one customer's row stays locked, and logs the lock", async () => {
    const db = database.db;
    const [plan] = loadPlans(JSON.stringify([{ name: "lockplan", period: "1h", allowances: { ai: { allowance: 10 } } }]), undefined);
    const open = async (owner: string, endedAgo: string) => {
      const { id } = await openSubscription(db, { ownerId: owner, plan: "lockplan", actorId: "t", requestId: null, planDefinition: plan });
      await db.execute(sql`update plan_periods set period_end = now() - ${endedAgo}::interval, anchor_at = now() - ${endedAgo}::interval - interval '1 hour'
                            where subscription_id = ${id}::uuid`);
      return id;
    };
    const lockedSub = await open("renewal-lock-owner-1", "2 minutes");
    const freeSub = await open("renewal-lock-owner-2", "1 minute");
    const periodOf = async (id: string) =>
      Number((await queryRows<{ n: number }>(db, sql`select period_number as n from plan_periods where subscription_id = ${id}::uuid`))[0].n);

    const lockedRenewals = new Set<string>();
    const captured = captureLogLines();
    const pass = () => runGrantMaintenance({ db, plans: [plan], logger: createLogger("info", captured.destination), renewalBudgetMs: 1_000, lockedRenewals });
    await locker.query("begin");
    await locker.query("select * from credit_balances where subscription_id = $1 for update", [lockedSub]);
    try {
      // The first pass meets the locked one first, and its budget is gone by the time the wait ends.
      expect((await pass()).renewal).toMatchObject({ renewed: 0, failed: 1, interrupted: "budget" });
      expect([...lockedRenewals]).toEqual([lockedSub]);
      // The next one renews the other first.
      expect((await pass()).renewal).toMatchObject({ renewed: 1 });
      expect(await periodOf(freeSub)).toBe(2);
      expect(await periodOf(lockedSub)).toBe(1);
    } finally {
      await locker.query("rollback");
    }
    const failedLine = captured.lines.find((l) => l.event === "plans.renewal_failed");
    expect(failedLine).toMatchObject({ subscriptionId: lockedSub, sqlState: "55P03", lockNotAvailable: true, lockTimeoutMs: RECOVERY_LOCK_TIMEOUT_MS });
    expect(failedLine!.msg).toMatch(/locked by another session.*pg_stat_activity/);
    // The lock gone, the next pass renews the locked one too and forgets it.
    await pass();
    expect(await periodOf(lockedSub)).toBe(2);
    expect(lockedRenewals.size).toBe(0);
  }, 30_000);
});
