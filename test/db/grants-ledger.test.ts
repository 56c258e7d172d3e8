/**
 * Grants under the production ledger statements (issue 17): the coalesced hold statement draws in
 * spending order and never from an expired grant, even before the expiry pass; refunds give back in
 * reverse draw order; and, on PostgreSQL, 200 concurrent holds across 20 grants with mixed
 * priorities and expiries (some expiring during the load, the expiry pass running beside it) follow
 * the order exactly, as a replay of the ledger proves.
 */
import { randomUUID } from "node:crypto";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectDatabase } from "../../src/db/connect.js";
import { queryRows, type Database, type DatabaseHandle } from "../../src/db/database.js";
import { runGrantMaintenance } from "../../src/grants/maintenance.js";
import { createLogger } from "../../src/observability/logger.js";
import { loadPlans } from "../../src/plans/plan-config.js";
import { openSubscription } from "../../src/subscriptions/subscription-store.js";
import { sqlState } from "../../src/db/errors.js";
import { auditLedgerAndGrants } from "../../src/grants/grant-audit.js";
import { grantWithTerms, type GrantTerms } from "../../src/grants/grant-credits.js";
import { expireDueGrants } from "../../src/grants/expiry.js";
import { changeBalance } from "../../src/ledger/change-balance.js";
import { createCoalescingChargeLedger, type CoalescingChargeLedger } from "../../src/ledger/coalescing-charge-ledger.js";
import type { HoldOutcome } from "../../src/ledger/hold.js";
import { refundDebit } from "../../src/ledger/refund-charge.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { postgresAvailable } from "../helpers/services.js";
import { fundedSubscription } from "../helpers/test-app.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function addGrant(db: Database, subscriptionId: string, amount: number, terms: Partial<GrantTerms> = {}) {
  return grantWithTerms(
    db,
    { subscriptionId, creditType: "ai", kind: "GRANT", delta: amount, actorId: "test", reason: "test", requestId: null },
    { category: "PAID", priority: 50, expiresAt: null, ...terms },
  );
}

async function grantIdOf(db: Database, entryId: string): Promise<string> {
  const [row] = await queryRows<{ id: string }>(db, sql`select id from credit_grants where entry_id = ${entryId}::uuid`);
  return row.id;
}

async function drawsOf(db: Database, entryId: string): Promise<{ grantId: string; amount: number }[]> {
  const [row] = await queryRows<{ draws: { grantId: string; amount: number }[] }>(db, sql`select draws from credit_ledger where id = ${entryId}::uuid`);
  return row.draws;
}

async function aiBalance(db: Database, subscriptionId: string): Promise<number> {
  const [row] = await queryRows<{ balance: number }>(
    db,
    sql`select balance from credit_balances where subscription_id = ${subscriptionId}::uuid and credit_type = 'ai'`,
  );
  return Number(row.balance);
}

// The charge ledger's two calls these tests make, through its production commands: a hold of one
// call (a group of one) and its post (the cost stands, nothing released).
async function holdOne(ledger: CoalescingChargeLedger, request: ReturnType<typeof hold>): Promise<HoldOutcome> {
  const [outcome] = await ledger.hold([{ ...request, entryId: randomUUID(), authorize: false, actorIsAdmin: false }]);
  return outcome;
}
async function postHold(ledger: CoalescingChargeLedger, subscriptionId: string, entryId: string): Promise<void> {
  const [outcome] = await ledger.settle([{ kind: "post", subscriptionId, entryId, actorId: null, requestId: null }]);
  expect(outcome.settled).toBe(true);
}

const hold = (subscriptionId: string, amount: number) => ({
  subscriptionId,
  creditType: "ai",
  amount,
  operation: "Mutation.test",
  estimated: amount,
  actorId: "tester",
  adminOverride: false,
  requestId: "test",
});

describe.each(BACKENDS)("grants in the ledger statements on %s", (backend) => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase(backend);
  });
  afterAll(() => database?.dispose());

  it("a hold skips expired grants before the expiry pass has run, and counts only what it can draw", async () => {
    const ledger = createCoalescingChargeLedger(database.db);
    const sub = await fundedSubscription(database, "grants-owner", {});
    await addGrant(database.db, sub, 4, { category: "PROMOTIONAL", priority: 0, expiresAt: new Date(Date.now() + 700) });
    const paid = await grantIdOf(database.db, (await addGrant(database.db, sub, 2)).id);
    await sleep(800);
    // 6 in the balance row, 4 of them expired: no pass has run.
    expect(await aiBalance(database.db, sub)).toBe(6);
    expect(await holdOne(ledger, hold(sub, 3))).toEqual({ ok: false, reason: "insufficient", available: 2 });
    const adjust = changeBalance(database.db, { subscriptionId: sub, creditType: "ai", kind: "ADJUSTMENT", delta: -3, actorId: "a", reason: "r", requestId: null });
    await expect(adjust).rejects.toSatisfy((err) => sqlState(err) === "23514");
    const ok = await holdOne(ledger, hold(sub, 2));
    expect(ok).toMatchObject({ ok: true, balanceAfter: 0 });
    if (!ok.ok) throw new Error("unreachable");
    expect(await drawsOf(database.db, ok.entryId)).toEqual([{ grantId: paid, amount: 2 }]);
    expect(await expireDueGrants(database.db)).toEqual({ balances: 1, expired: 1, failed: 0 });
    expect(await expireDueGrants(database.db)).toEqual({ balances: 0, expired: 0, failed: 0 });
    expect(await aiBalance(database.db, sub)).toBe(0);
    expect(await auditLedgerAndGrants(database.db)).toMatchObject({ ok: true, mismatches: [] });
  });

  it("a hold refuses a balance whose every grant has expired, before the expiry pass has run (it used to spend them)", async () => {
    const ledger = createCoalescingChargeLedger(database.db);
    const sub = await fundedSubscription(database, "grants-owner", {});
    await addGrant(database.db, sub, 5, { category: "PROMOTIONAL", expiresAt: new Date(Date.now() + 500) });
    await sleep(600);
    // 5 in the balance row, all of them expired, and no unexpired grant at all: nothing may be held.
    expect(await aiBalance(database.db, sub)).toBe(5);
    expect(await holdOne(ledger, hold(sub, 3))).toEqual({ ok: false, reason: "insufficient", available: 0 });
    expect(await aiBalance(database.db, sub)).toBe(5);
    expect(await expireDueGrants(database.db)).toEqual({ balances: 1, expired: 1, failed: 0 });
    expect(await aiBalance(database.db, sub)).toBe(0);
    expect(await auditLedgerAndGrants(database.db)).toMatchObject({ ok: true, mismatches: [] });
  });

  it("a debit across grants is given back in reverse draw order, part by part", async () => {
    const ledger = createCoalescingChargeLedger(database.db);
    const sub = await fundedSubscription(database, "grants-owner", {});
    const soon = await grantIdOf(database.db, (await addGrant(database.db, sub, 3, { expiresAt: new Date(Date.now() + 3_600_000) })).id);
    const never = await grantIdOf(database.db, (await addGrant(database.db, sub, 10)).id);
    const debit = await holdOne(ledger, hold(sub, 5));
    if (!debit.ok) throw new Error("debit refused");
    await postHold(ledger, sub, debit.entryId);
    expect(await drawsOf(database.db, debit.entryId)).toEqual([
      { grantId: soon, amount: 3 },
      { grantId: never, amount: 2 },
    ]);
    const refund = (amount: number) => refundDebit(database.db, { entryId: debit.entryId, amount, actorId: "a", reason: "r", requestId: "x" });
    const first = await refund(1);
    expect(first.ok && (await drawsOf(database.db, first.entry.id))).toEqual([{ grantId: never, amount: 1 }]);
    const second = await refund(3);
    expect(second.ok && (await drawsOf(database.db, second.entry.id))).toEqual([
      { grantId: never, amount: 1 },
      { grantId: soon, amount: 2 },
    ]);
    const remaining = await queryRows<{ id: string; remaining: number }>(database.db, sql`select id, remaining from credit_grants where subscription_id = ${sub}::uuid`);
    expect(Object.fromEntries(remaining.map((r) => [r.id, Number(r.remaining)]))).toEqual({ [soon]: 2, [never]: 10 });
    expect(await auditLedgerAndGrants(database.db)).toMatchObject({ ok: true });
  });

  it("RELEASE entries (issue 13's settlement, one statement for several) give back in reverse order; to an expired grant they expire at once", async () => {
    const ledger = createCoalescingChargeLedger(database.db);
    const sub = await fundedSubscription(database, "grants-owner", {});
    const soon = await grantIdOf(database.db, (await addGrant(database.db, sub, 4, { priority: 0, expiresAt: new Date(Date.now() + 600) })).id);
    const paid = await grantIdOf(database.db, (await addGrant(database.db, sub, 20)).id);
    const first = await holdOne(ledger, hold(sub, 6));
    const second = await holdOne(ledger, hold(sub, 3));
    if (!first.ok || !second.ok) throw new Error("holds refused");
    expect(await drawsOf(database.db, first.entryId)).toEqual([{ grantId: soon, amount: 4 }, { grantId: paid, amount: 2 }]);
    await sleep(700);
    // Settled at 1 and 2: releases of 5 and 1 in one statement that writes the balance row once, as a
    // batched settlement does.
    await database.db.execute(sql`
      with releases (entry_id, amount) as (values (${first.entryId}::uuid, 5), (${second.entryId}::uuid, 1)),
      credited as (
        update credit_balances set balance = balance + 6, updated_at = now()
         where subscription_id = ${sub}::uuid and credit_type = 'ai' returning balance
      )
      insert into credit_ledger (subscription_id, credit_type, kind, amount, balance_after, refund_of)
      select ${sub}::uuid, 'ai', 'RELEASE', r.amount, c.balance, r.entry_id from releases r, credited c`);
    const entries = await queryRows<{ kind: string; amount: number; refund_of: string | null; draws: unknown }>(
      database.db,
      sql`select kind, amount, refund_of, draws from credit_ledger where subscription_id = ${sub}::uuid and kind in ('RELEASE', 'EXPIRATION') order by seq`,
    );
    expect(entries).toEqual([
      { kind: "RELEASE", amount: 5, refund_of: first.entryId, draws: [{ grantId: paid, amount: 2 }, { grantId: soon, amount: 3, expired: true }] },
      { kind: "RELEASE", amount: 1, refund_of: second.entryId, draws: [{ grantId: paid, amount: 1 }] },
      { kind: "EXPIRATION", amount: -3, refund_of: null, draws: [{ grantId: soon, amount: 3 }] },
    ]);
    // The first hold cost 1, taken from the promotional grant (refilled last); the second cost 2 of the PAID one.
    expect(await aiBalance(database.db, sub)).toBe(20 - 2);
    expect(await auditLedgerAndGrants(database.db)).toMatchObject({ ok: true, mismatches: [] });
  });

  // A settlement statement gives a one-grant debit back into that grant itself, and leaves a debit
  // that drew from several grants to the ledger trigger, in reverse draw order. A settlement that
  // mixes the two must not give the several-grant debit back into its first grant alone.
  const settleMixed = async (expiresInMs: number, waitMs: number) => {
    const ledger = createCoalescingChargeLedger(database.db);
    const sub = await fundedSubscription(database, "grants-owner", {});
    const promo = await grantIdOf(
      database.db,
      (await addGrant(database.db, sub, 4, { category: "PROMOTIONAL", priority: 0, expiresAt: new Date(Date.now() + expiresInMs) })).id,
    );
    const paid = await grantIdOf(database.db, (await addGrant(database.db, sub, 20)).id);
    const first = await holdOne(ledger, hold(sub, 6));
    const second = await holdOne(ledger, hold(sub, 3));
    if (!first.ok || !second.ok) throw new Error("holds refused");
    expect(await drawsOf(database.db, first.entryId)).toEqual([{ grantId: promo, amount: 4 }, { grantId: paid, amount: 2 }]);
    expect(await drawsOf(database.db, second.entryId)).toEqual([{ grantId: paid, amount: 3 }]);
    await sleep(waitMs);
    const outcomes = await ledger.settle([
      { kind: "release", subscriptionId: sub, entryId: first.entryId, amount: 5, actorId: null, requestId: null },
      { kind: "void", subscriptionId: sub, entryId: second.entryId, reason: "failed", actorId: null, requestId: null },
    ]);
    expect(outcomes.map((o) => o.settled)).toEqual([true, true]);
    const entries = await queryRows<{ kind: string; amount: number; refund_of: string | null; draws: unknown }>(
      database.db,
      sql`select kind, amount, refund_of, draws from credit_ledger where subscription_id = ${sub}::uuid and kind in ('RELEASE', 'REFUND', 'EXPIRATION') order by seq`,
    );
    const remaining = await queryRows<{ id: string; remaining: number }>(database.db, sql`select id, remaining from credit_grants where subscription_id = ${sub}::uuid`);
    return { sub, promo, paid, first: first.entryId, second: second.entryId, entries, remaining: Object.fromEntries(remaining.map((r) => [r.id, Number(r.remaining)])) };
  };

  it("one settlement of a debit drawn from two grants and one drawn from one gives each back to its own grants, in reverse draw order", async () => {
    const { sub, promo, paid, first, second, entries, remaining } = await settleMixed(3_600_000, 0);
    expect(entries).toEqual([
      { kind: "RELEASE", amount: 5, refund_of: first, draws: [{ grantId: paid, amount: 2 }, { grantId: promo, amount: 3 }] },
      { kind: "REFUND", amount: 3, refund_of: second, draws: [{ grantId: paid, amount: 3 }] },
    ]);
    // The first call cost 1, of the promotional grant (refilled last); the second cost nothing.
    expect(remaining).toEqual({ [promo]: 3, [paid]: 20 });
    expect(await aiBalance(database.db, sub)).toBe(23);
    expect(await auditLedgerAndGrants(database.db)).toMatchObject({ ok: true, mismatches: [] });
  });

  it("the same settlement after the promotional grant expired gives its part back expired, and it expires at once", async () => {
    const { sub, promo, paid, first, second, entries, remaining } = await settleMixed(600, 700);
    expect(entries).toEqual([
      { kind: "RELEASE", amount: 5, refund_of: first, draws: [{ grantId: paid, amount: 2 }, { grantId: promo, amount: 3, expired: true }] },
      { kind: "REFUND", amount: 3, refund_of: second, draws: [{ grantId: paid, amount: 3 }] },
      { kind: "EXPIRATION", amount: -3, refund_of: null, draws: [{ grantId: promo, amount: 3 }] },
    ]);
    expect(remaining).toEqual({ [promo]: 0, [paid]: 20 });
    expect(await aiBalance(database.db, sub)).toBe(20);
    expect(await auditLedgerAndGrants(database.db)).toMatchObject({ ok: true, mismatches: [] });
  });

  it("the audit finds a grant that disagrees with its ledger history, and a balance that disagrees with its grants", async () => {
    const audit = await createTestDatabase(backend);
    try {
      const sub = await fundedSubscription(audit, "audit-owner", {});
      const entry = await addGrant(audit.db, sub, 5);
      const other = await addGrant(audit.db, sub, 4, { priority: 0 });
      expect(await auditLedgerAndGrants(audit.db)).toMatchObject({ ok: true, mismatches: [] });
      // A grant's remaining moved with no ledger entry: both invariants break, balance and ledger still agree.
      await audit.db.execute(sql`update credit_grants set remaining = remaining - 2 where entry_id = ${entry.id}::uuid`);
      let report = await auditLedgerAndGrants(audit.db);
      expect(report.ok).toBe(false);
      expect(report.mismatches).toEqual([{ subscriptionId: sub, creditType: "ai", balance: 9, ledgerSum: 9 }]);
      expect(report.grantMismatches.balances).toEqual([{ subscriptionId: sub, creditType: "ai", balance: 9, grantsRemaining: 7 }]);
      expect(report.grantMismatches.grants).toEqual([
        { subscriptionId: sub, creditType: "ai", grantId: await grantIdOf(audit.db, entry.id), remaining: 3, fromLedger: 5 },
      ]);
      // Moved between two grants: the sum agrees, each grant's history does not.
      await audit.db.execute(sql`update credit_grants set remaining = remaining + 2 where entry_id = ${other.id}::uuid`);
      report = await auditLedgerAndGrants(audit.db);
      expect(report.ok).toBe(false);
      expect(report.grantMismatches.balances).toEqual([]);
      expect(report.grantMismatches.grants).toHaveLength(2);
      expect(report.mismatches).toEqual([{ subscriptionId: sub, creditType: "ai", balance: 9, ledgerSum: 9 }]);
    } finally {
      await audit.dispose();
    }
  });

  it("a debit written before grants existed comes back as a PAID grant when refunded", async () => {
    const sub = await fundedSubscription(database, "grants-owner", { ai: 5 });
    // What a pre-0005 debit looks like: no draws. Written as the old statements did, minus the trigger's work.
    await database.db.execute(sql`alter table credit_ledger disable trigger credit_ledger_apply_grants`);
    let entryId: string;
    try {
      const [row] = await queryRows<{ id: string }>(
        database.db,
        sql`with d as (update credit_balances set balance = balance - 2 where subscription_id = ${sub}::uuid and credit_type = 'ai' returning balance)
            insert into credit_ledger (subscription_id, credit_type, kind, amount, balance_after) select ${sub}::uuid, 'ai', 'DEBIT', -2, balance from d returning id`,
      );
      entryId = row.id;
      await database.db.execute(sql`update credit_grants set remaining = remaining - 2 where subscription_id = ${sub}::uuid`);
    } finally {
      await database.db.execute(sql`alter table credit_ledger enable trigger credit_ledger_apply_grants`);
    }
    // The audit cannot match that hand-made draw to a grant; only the refund's behaviour is checked here.
    const refund = await refundDebit(database.db, { entryId, amount: undefined, actorId: "a", reason: "old debit", requestId: "x" });
    expect(refund.ok).toBe(true);
    const grants = await queryRows<{ category: string; amount: number; entry_id: string | null }>(
      database.db,
      sql`select category, amount, entry_id from credit_grants where subscription_id = ${sub}::uuid order by seq`,
    );
    expect(grants.map((g) => [g.category, Number(g.amount)])).toEqual([["PAID", 5], ["PAID", 2]]);
    expect(await aiBalance(database.db, sub)).toBe(5);
  });
});

interface GrantSpec {
  id: string;
  priority: number;
  expiresAt: Date | null;
  createdAt: Date;
  seq: number;
  remaining: number;
}

/** Spending order, exactly as the trigger orders grants. */
function spendingOrder(a: GrantSpec, b: GrantSpec): number {
  if (a.priority !== b.priority) return a.priority - b.priority;
  const ae = a.expiresAt?.getTime() ?? Infinity;
  const be = b.expiresAt?.getTime() ?? Infinity;
  if (ae !== be) return ae - be;
  if (a.createdAt.getTime() !== b.createdAt.getTime()) return a.createdAt.getTime() - b.createdAt.getTime();
  return a.seq - b.seq;
}

describe.skipIf(!postgresAvailable)("200 concurrent holds across 20 grants on PostgreSQL", () => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase("postgres");
  });
  afterAll(() => database?.dispose());

  it("draw in spending order, never from an expired grant, no grant negative, audit clean", async () => {
    const ledger = createCoalescingChargeLedger(database.db, { maxBatch: 20, maxInFlight: 2 });
    const sub = await fundedSubscription(database, "load-owner", {});
    const start = Date.now();
    for (let i = 0; i < 20; i++) {
      // Mixed priorities and expiries: some never expire, some expire during the load (0.3–1.5 s in).
      const expiresAt = i % 3 === 0 ? null : new Date(start + (i % 4 === 1 ? 300 + i * 60 : 3_600_000 + i * 1_000));
      await addGrant(database.db, sub, 8 + (i % 4) * 4, {
        category: i % 2 === 0 ? "PAID" : "PROMOTIONAL",
        priority: [10, 50, 90][i % 3],
        expiresAt,
      });
    }
    const grantRows = await queryRows<{ id: string; priority: number; expires_at: Date | null; created_at: Date; seq: string; remaining: number }>(
      database.db,
      sql`select id, priority, expires_at, created_at, seq, remaining from credit_grants where subscription_id = ${sub}::uuid`,
    );
    const model = new Map<string, GrantSpec>(
      grantRows.map((g) => [
        g.id,
        {
          id: g.id,
          priority: Number(g.priority),
          expiresAt: g.expires_at === null ? null : new Date(g.expires_at),
          createdAt: new Date(g.created_at),
          seq: Number(g.seq),
          remaining: Number(g.remaining),
        },
      ]),
    );
    const total = [...model.values()].reduce((s, g) => s + g.remaining, 0);

    // 200 holds of 1–2 credits in waves over ~1.6 s (more than the grants hold), the expiry pass beside them.
    let loading = true;
    const expiry = (async () => {
      while (loading) {
        await expireDueGrants(database.db);
        await sleep(100);
      }
    })();
    const outcomes = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        await sleep((i % 8) * 200);
        const outcome = await holdOne(ledger, hold(sub, 1 + (i % 2)));
        if (outcome.ok) await postHold(ledger, sub, outcome.entryId);
        return outcome;
      }),
    );
    loading = false;
    await expiry;
    await expireDueGrants(database.db);
    const granted = outcomes.filter((o) => o.ok).length;
    expect(granted).toBeGreaterThan(20);
    expect(granted).toBeLessThan(200);

    // Replay every entry in ledger order against the model: each debit's draws must be exactly what
    // the spending order gives at its time (expired grants skipped), each expiration what was left.
    const entries = await queryRows<{ kind: string; amount: number; created_at: Date; draws: { grantId: string; amount: number }[] }>(
      database.db,
      sql`select kind, amount, created_at, draws from credit_ledger where subscription_id = ${sub}::uuid and kind <> 'GRANT' order by seq`,
    );
    let expirations = 0;
    for (const entry of entries) {
      entry.created_at = new Date(entry.created_at);
      if (entry.kind === "DEBIT") {
        let need = -entry.amount;
        const expected: { grantId: string; amount: number }[] = [];
        const usable = [...model.values()]
          .filter((g) => g.remaining > 0 && (g.expiresAt === null || g.expiresAt.getTime() > entry.created_at.getTime()))
          .sort(spendingOrder);
        for (const g of usable) {
          if (need === 0) break;
          const take = Math.min(need, g.remaining);
          expected.push({ grantId: g.id, amount: take });
          need -= take;
        }
        expect(need).toBe(0);
        expect(entry.draws).toEqual(expected);
        for (const d of entry.draws) model.get(d.grantId)!.remaining -= d.amount;
      } else {
        expect(entry.kind).toBe("EXPIRATION");
        expirations++;
        for (const d of entry.draws) {
          const g = model.get(d.grantId)!;
          expect(g.expiresAt!.getTime()).toBeLessThanOrEqual(entry.created_at.getTime());
          expect(d.amount).toBe(g.remaining);
          g.remaining = 0;
        }
      }
    }
    expect(expirations).toBeGreaterThan(0);
    const final = await queryRows<{ id: string; remaining: number }>(database.db, sql`select id, remaining from credit_grants where subscription_id = ${sub}::uuid`);
    for (const g of final) {
      expect(g.remaining).toBeGreaterThanOrEqual(0);
      expect(g.remaining).toBe(model.get(g.id)!.remaining);
    }
    const spent = outcomes.reduce((s, o, i) => s + (o.ok ? 1 + (i % 2) : 0), 0);
    const expired = -entries.filter((e) => e.kind === "EXPIRATION").reduce((s, e) => s + e.amount, 0);
    expect(await aiBalance(database.db, sub)).toBe(total - spent - expired);
    expect(await auditLedgerAndGrants(database.db)).toMatchObject({ ok: true, mismatches: [] });
  }, 60_000);
});

describe.skipIf(!postgresAvailable)("expiry and renewal on several instances at once, on PostgreSQL", () => {
  let database: TestDatabase;
  let others: DatabaseHandle[];

  beforeAll(async () => {
    database = await createTestDatabase("postgres");
    // Three more connection pools on the same database: three more "instances".
    others = await Promise.all([1, 2, 3].map(() => connectDatabase({ databaseUrl: database.url! })));
  });
  afterAll(async () => {
    await Promise.all((others ?? []).map((o) => o.close()));
    await database?.dispose();
  });

  it("each expired grant is expired once and each period boundary renewed once", async () => {
    const plan = loadPlans(JSON.stringify([{ name: "tiny", period: "1s", allowances: { ai: { allowance: 5, rolloverMax: 2 } } }]), undefined)[0];
    const subs: string[] = [];
    for (let i = 0; i < 10; i++) {
      const subscription = await openSubscription(database.db, { ownerId: "multi", plan: "tiny", actorId: "t", requestId: null, planDefinition: plan });
      subs.push(subscription.id);
      await addGrant(database.db, subscription.id, 3, { category: "PROMOTIONAL", expiresAt: new Date(Date.now() + 500) });
    }
    await sleep(2_300);
    const instances = [database, ...others];
    const reports = await Promise.all(instances.map((o) => runGrantMaintenance({ db: o.db, plans: [plan], logger: createLogger("silent") })));
    // At least two boundaries passed for every subscription (more for the first ones opened, on a
    // slow machine); each was renewed exactly once, whoever did it.
    const periods = await queryRows<{ subscription_id: string; period_number: number }>(database.db, sql`select subscription_id, period_number from plan_periods`);
    const renewalsOf = new Map(periods.map((p) => [p.subscription_id, Number(p.period_number) - 1]));
    const total = [...renewalsOf.values()].reduce((a, b) => a + b, 0);
    expect(reports.reduce((s, r) => s + r.renewal.renewed, 0)).toBe(total);
    const rows = await queryRows<{ subscription_id: string; kind: string; n: string | number; total: string | number }>(
      database.db,
      sql`select subscription_id, kind, count(*) as n, sum(amount) as total from credit_ledger group by subscription_id, kind`,
    );
    for (const sub of subs) {
      const renewals = renewalsOf.get(sub)!;
      expect(renewals).toBeGreaterThanOrEqual(2);
      const of = (kind: string) => rows.find((r) => r.subscription_id === sub && r.kind === kind);
      // The first allowance and the promo grant, then per renewal: rollover in + allowance.
      expect(Number(of("GRANT")!.n)).toBe(1 + 1 + 2 * renewals);
      // The promotional 3 expire once; the first renewal expires 5 unused − 2 rolled = 3, each later one 7 − 2 = 5.
      expect(Number(of("EXPIRATION")!.total)).toBe(-3 - 3 - 5 * (renewals - 1));
      expect(await aiBalance(database.db, sub)).toBe(5 + 2);
    }
    expect(await auditLedgerAndGrants(database.db)).toMatchObject({ ok: true, mismatches: [] });
  }, 60_000);
});
