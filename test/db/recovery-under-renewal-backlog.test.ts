/**
 * The recovery pass under a plan-renewal backlog, on PostgreSQL (an outside audit: 400 subscriptions
 * on 1 s plans, renewals far slower than they came due; the pass looped over the backlog and never
 * ended, so grants expired 30 min earlier kept their credits, a hold past CHARGE_SETTLE_TIMEOUT was
 * never refunded, and a server told to stop stayed alive renewing until SIGKILL):
 * - one pass still expires a due non-plan grant and refunds an overdue hold, and ends, its renewals
 *   cut at their time budget (the rest is left for the next pass), with a progress line per batch;
 * - the expiry that now runs before the renewals leaves alone the PLAN grants of periods still due
 *   (their renewal rolls part of them over);
 * - a scheduler stopped during the catch-up returns after the transaction it is in;
 * - the server (the real wiring) refunds and expires within a few intervals while the backlog
 *   lasts, and its close() returns within the 10 s the README gives a graceful stop.
 * The backlog: 500 subscriptions on a 1 s plan whose periods (and PLAN grants) were moved 10 minutes
 * into the past, so 300,000 period ends are due, and 500 more every second.
 */
import { randomUUID } from "node:crypto";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Database } from "../../src/db/database.js";
import { queryRows } from "../../src/db/database.js";
import { grantWithTerms } from "../../src/grants/grant-credits.js";
import { auditLedgerAndGrants } from "../../src/grants/grant-audit.js";
import { runGrantMaintenance } from "../../src/grants/maintenance.js";
import { createLogger } from "../../src/observability/logger.js";
import { loadPlans } from "../../src/plans/plan-config.js";
import { runRecoveryPass } from "../../src/recovery/recovery-pass.js";
import { startRecoveryScheduler } from "../../src/recovery/recovery-scheduler.js";
import { openSubscription } from "../../src/subscriptions/subscription-store.js";
import { createPostgresDatabase, type TestDatabase } from "../helpers/databases.js";
import { holdOne } from "../helpers/ledger-commands.js";
import { captureLogLines } from "../helpers/log-lines.js";
import { postgresAvailable } from "../helpers/services.js";
import { fundedSubscription, startTestServer } from "../helpers/test-app.js";

const PLANS_JSON = JSON.stringify([{ name: "second", period: "1s", allowances: { ai: { allowance: 5, rolloverMax: 2 } } }]);
const plans = loadPlans(PLANS_JSON, undefined);
const SUBSCRIPTIONS = 500;
const BEHIND = "10 minutes";
const silent = createLogger("silent");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves to what `work` resolves to, or rejects once `ms` have passed (the work may run on). */
function within<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

/** Subscriptions whose period ended more than a minute ago: the backlog is not caught up. */
async function farBehind(db: Database): Promise<number> {
  const [{ n }] = await queryRows<{ n: number }>(db, sql`select count(*)::int as n from plan_periods where period_end < now() - interval '1 minute'`);
  return Number(n);
}

async function renewedPeriods(db: Database): Promise<number> {
  const [{ n }] = await queryRows<{ n: number | string }>(db, sql`select coalesce(sum(period_number - 1), 0) as n from plan_periods`);
  return Number(n);
}

/** A hold of 3 on a funded subscription not on the plan, recorded without an instance: judged by CHARGE_SETTLE_TIMEOUT alone. */
async function openHold(db: Database, database: TestDatabase): Promise<{ subscriptionId: string; entryId: string }> {
  const subscriptionId = await fundedSubscription(database, `caller-${randomUUID()}`, { ai: 10 });
  const outcome = await holdOne(db, {
    subscriptionId,
    creditType: "ai",
    amount: 3,
    operation: "Mutation.runAiTask",
    estimated: 3,
    actorId: "caller",
    adminOverride: false,
    requestId: `req-${randomUUID()}`,
  });
  if (!outcome.ok) throw new Error(`hold refused: ${JSON.stringify(outcome)}`);
  return { subscriptionId, entryId: outcome.entryId };
}

async function refunded(db: Database, hold: { subscriptionId: string; entryId: string }): Promise<boolean> {
  const rows = await queryRows(
    db,
    sql`select 1 from credit_ledger where subscription_id = ${hold.subscriptionId}::uuid and refund_of = ${hold.entryId}::uuid and kind = 'REFUND'`,
  );
  return rows.length > 0;
}

/** A PROMOTIONAL grant of 4 expiring in `inMs` on a subscription not on the plan. */
async function promotionalGrant(db: Database, database: TestDatabase, inMs: number): Promise<string> {
  const subscriptionId = await fundedSubscription(database, `promo-${randomUUID()}`, {});
  await grantWithTerms(
    db,
    { subscriptionId, creditType: "ai", kind: "GRANT", delta: 4, actorId: "test", reason: "promo", requestId: null },
    { category: "PROMOTIONAL", priority: 10, expiresAt: new Date(Date.now() + inMs) },
  );
  return subscriptionId;
}

async function expired(db: Database, subscriptionId: string): Promise<boolean> {
  const rows = await queryRows(db, sql`select 1 from credit_ledger where subscription_id = ${subscriptionId}::uuid and kind = 'EXPIRATION'`);
  return rows.length > 0;
}

async function eventually(what: string, ms: number, check: () => Promise<boolean>): Promise<void> {
  const until = performance.now() + ms;
  while (!(await check())) {
    if (performance.now() > until) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(100);
  }
}

describe.skipIf(!postgresAvailable)("recovery under a plan-renewal backlog, on PostgreSQL", () => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createPostgresDatabase();
    const db = database.db;
    for (let i = 0; i < SUBSCRIPTIONS; i += 20) {
      await Promise.all(
        Array.from({ length: 20 }, (_, k) =>
          openSubscription(db, { ownerId: `plan-${i + k}`, plan: "second", actorId: "t", requestId: null, planDefinition: plans[0] }),
        ),
      );
    }
    // Every period, and the PLAN grant that expires at its end, 10 minutes into the past: 600 ends due each.
    await db.execute(sql`update plan_periods set anchor_at = anchor_at - ${BEHIND}::interval, period_start = period_start - ${BEHIND}::interval,
                                                  period_end = period_end - ${BEHIND}::interval`);
    await db.execute(sql`update credit_grants set expires_at = expires_at - ${BEHIND}::interval where category = 'PLAN'`);
  }, 120_000);
  afterAll(() => database?.dispose());

  it("one pass refunds the overdue hold and expires the due grant, and ends with the renewals cut at their budget", async () => {
    const db = database.db;
    const hold = await openHold(db, database);
    const promo = await promotionalGrant(db, database, 1_000);
    await sleep(1_200);
    const logs = captureLogLines();
    const logger = createLogger("info", logs.destination);

    // One pass as the server runs it: the refunds, then the grants' part (create-credits' runPass).
    const pass = async () => {
      // A clock an hour ahead: the hold is past its settle timeout (5 min).
      const refunds = await runRecoveryPass({ db, settleTimeoutMs: 5 * 60_000, logger, clock: () => new Date(Date.now() + 3_600_000) });
      const grants = await runGrantMaintenance({ db, plans, logger, renewalBudgetMs: 1_000 });
      return { refunds, grants };
    };
    const { refunds, grants } = await within(20_000, "one recovery pass over the backlog", pass());

    expect(refunds.refunded).toBe(1);
    expect(await refunded(db, hold)).toBe(true);
    expect(await expired(db, promo)).toBe(true);
    expect(grants.renewal.renewed).toBeGreaterThan(0);
    expect(grants.renewal.interrupted).toBe("budget");
    expect(await farBehind(db)).toBeGreaterThan(0);

    // The catch-up's progress, at info: how many subscriptions were due and how many are done, a line
    // per batch of 100 and one where the budget cut it (not a line per subscription).
    const progress = logs.lines.filter((l) => l.event === "plans.renewal_progress");
    expect(progress.length).toBeGreaterThan(0);
    for (const line of progress) expect(line).toMatchObject({ level: 30, due: expect.any(Number), done: expect.any(Number) });
    const last = progress[progress.length - 1];
    expect(last.due).toBeGreaterThanOrEqual(SUBSCRIPTIONS);
    expect(last.done).toBeGreaterThan(0);
    expect(progress.length).toBeLessThanOrEqual(Math.floor(last.done / 100) + 1);
    expect(logs.lines.find((l) => l.event === "grants.maintenance")).toMatchObject({ renewal: { interrupted: "budget" } });
  }, 60_000);

  it("the expiry that runs before the renewals leaves the PLAN grants of periods still due to their renewal", async () => {
    const db = database.db;
    // Periods still due after the last pass: each keeps its ended period's PLAN grant, unexpired
    // (nothing was spent: 5 of allowance, or 2 rolled over + 5), for its renewal to roll over.
    const stillDue = await queryRows<{ remaining: number }>(
      db,
      sql`select g.remaining from plan_periods p
            join credit_grants g on g.subscription_id = p.subscription_id and g.category = 'PLAN' and g.expires_at = p.period_end
           where p.period_end < now() - interval '1 minute'`,
    );
    expect(stillDue.length).toBeGreaterThan(0);
    for (const g of stillDue) expect(g.remaining).toBeGreaterThan(0);
    const [{ n }] = await queryRows<{ n: number }>(
      db,
      sql`select count(*)::int as n from credit_ledger l join plan_periods p on p.subscription_id = l.subscription_id
           where l.kind = 'EXPIRATION' and l.reason = 'grant expired'`,
    );
    expect(Number(n)).toBe(0);
  });

  it("a scheduler stopped during the catch-up returns after the transaction it is in", async () => {
    const db = database.db;
    const before = await renewedPeriods(db);
    // The server's pass, with the scheduler's stop signal handed to the grants' part, and a budget
    // far longer than the test: only the signal can end this pass early.
    const scheduler = startRecoveryScheduler({
      intervalMs: 1_000,
      logger: silent,
      runPass: async (signal) => {
        try {
          return await runRecoveryPass({ db, settleTimeoutMs: 5 * 60_000, logger: silent });
        } finally {
          await runGrantMaintenance({ db, plans, logger: silent, signal, renewalBudgetMs: 10 * 60_000 });
        }
      },
    });
    await eventually("renewals under way", 20_000, async () => (await renewedPeriods(db)) > before + 50);
    await within(2_000, "stop() during the catch-up", scheduler.stop());
    expect(await farBehind(db)).toBeGreaterThan(0);
    // Nothing renews once stop() has returned.
    const after = await renewedPeriods(db);
    await sleep(500);
    expect(await renewedPeriods(db)).toBe(after);
  }, 60_000);

  it("the server refunds and expires within a few intervals while the backlog lasts, and its close() returns within 10 s", async () => {
    const db = database.db;
    const server = await startTestServer({
      database,
      env: { PLANS: PLANS_JSON, RECOVERY_INTERVAL: "1s", CHARGE_SETTLE_TIMEOUT: "2s" },
    });
    let closed = false;
    try {
      const before = await renewedPeriods(db);
      await eventually("renewals under way", 20_000, async () => (await renewedPeriods(db)) > before + 50);
      const hold = await openHold(db, database);
      const promo = await promotionalGrant(db, database, 1_000);
      await eventually("the hold past CHARGE_SETTLE_TIMEOUT refunded", 20_000, () => refunded(db, hold));
      await eventually("the promotional grant expired", 20_000, () => expired(db, promo));
      expect(await farBehind(db)).toBeGreaterThan(0);

      // SIGTERM's path (main.ts calls close()): not held up by the periods still due.
      await within(10_000, "the server's close() during the catch-up", server.close());
      closed = true;
      expect(await farBehind(db)).toBeGreaterThan(0);
      const after = await renewedPeriods(db);
      await sleep(500);
      expect(await renewedPeriods(db)).toBe(after);
      expect(await auditLedgerAndGrants(db)).toMatchObject({ ok: true, mismatches: [] });
    } finally {
      if (!closed) void server.close().catch(() => undefined);
    }
  }, 90_000);
});
