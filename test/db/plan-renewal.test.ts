/**
 * Plan renewals at the database, on both backends:
 * - a plan that grants nothing (every allowance 0, or none) has no periods: none is started for a
 *   subscription on it, and a period that ends once its plan grants nothing is closed, as when the
 *   plan leaves the configuration;
 * - the cap at the largest balance (2,147,483,647) is computed against the balance once the renewal
 *   is done (the ended period's plan credits moved or expired), not against the balance in the
 *   middle of it: a renewal whose final balance fits grants the whole allowance. The renewal is
 *   called directly (credit_plan_renew) with chosen period ends, so nothing waits for a clock.
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows, type Database } from "../../src/db/database.js";
import { expireDueGrants } from "../../src/grants/expiry.js";
import { runGrantMaintenance } from "../../src/grants/maintenance.js";
import { createLogger } from "../../src/observability/logger.js";
import { auditLedgerAndGrants } from "../../src/grants/grant-audit.js";
import { grantWithTerms } from "../../src/grants/grant-credits.js";
import { changeBalance } from "../../src/ledger/change-balance.js";
import { loadPlans } from "../../src/plans/plan-config.js";
import { renewDuePeriods, startMissingPeriods, type PeriodClosure } from "../../src/plans/plan-periods.js";
import { openSubscription } from "../../src/subscriptions/subscription-store.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { holdOne } from "../helpers/ledger-commands.js";
import { captureLogLines } from "../helpers/log-lines.js";
import { fundedSubscription } from "../helpers/test-app.js";

const MAX = 2_147_483_647;
const BILLION = 1_000_000_000;

async function balanceOf(db: Database, subscriptionId: string): Promise<number> {
  const [row] = await queryRows<{ balance: number }>(
    db,
    sql`select balance from credit_balances where subscription_id = ${subscriptionId}::uuid and credit_type = 'ai'`,
  );
  return Number(row.balance);
}

interface Entry {
  kind: string;
  amount: number;
  balance_after: number;
  reason: string | null;
}

async function entriesOf(db: Database, subscriptionId: string): Promise<Entry[]> {
  const rows = await queryRows<Entry>(
    db,
    sql`select kind, amount, balance_after, reason from credit_ledger where subscription_id = ${subscriptionId}::uuid and credit_type = 'ai' order by seq`,
  );
  return rows.map((r) => ({ ...r, amount: Number(r.amount), balance_after: Number(r.balance_after) }));
}

async function periodsOf(db: Database, subscriptionId: string): Promise<number> {
  const [{ n }] = await queryRows<{ n: number }>(db, sql`select count(*)::int as n from plan_periods where subscription_id = ${subscriptionId}::uuid`);
  return Number(n);
}

describe.each(BACKENDS)("plan renewals on %s", (backend) => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase(backend);
  });
  afterAll(() => database?.dispose());

  describe("a plan that grants nothing", () => {
    const [free, zero] = loadPlans(
      JSON.stringify([
        { name: "free", period: "1h", allowances: {} },
        { name: "zero", period: "1h", allowances: { ai: { allowance: 0, rolloverMax: 5 }, leads: { allowance: 0 } } },
      ]),
      undefined,
    );

    it("has no period: a subscription opened on it gets none (so no currentPeriodEnd) and no plan credits", async () => {
      for (const plan of [free, zero]) {
        const { id } = await openSubscription(database.db, { ownerId: "nothing", plan: plan.name, actorId: "t", requestId: null, planDefinition: plan });
        expect(await periodsOf(database.db, id)).toBe(0);
        expect(await entriesOf(database.db, id)).toEqual([]);
      }
    });

    it("is not started for a subscription on it that has no period", async () => {
      const { id } = await openSubscription(database.db, { ownerId: "nothing-later", plan: "free", actorId: "t", requestId: null });
      expect(await startMissingPeriods(database.db, [free, zero])).toBe(0);
      expect(await periodsOf(database.db, id)).toBe(0);
    });

    it("closes, at its end, the period of a subscription whose plan now grants nothing, as when the plan left the configuration", async () => {
      const [granting] = loadPlans(JSON.stringify([{ name: "zero", period: "1h", allowances: { ai: { allowance: 5 } } }]), undefined);
      const { id } = await openSubscription(database.db, { ownerId: "nothing-now", plan: "zero", actorId: "t", requestId: null, planDefinition: granting });
      expect(await balanceOf(database.db, id)).toBe(5);
      // The period has ended (moved into the past rather than waited for).
      await database.db.execute(sql`update plan_periods set period_end = now() - interval '1 second' where subscription_id = ${id}::uuid`);
      const closures: PeriodClosure[] = [];
      expect(await renewDuePeriods(database.db, [free, zero], undefined, { onClosed: (c) => void closures.push(c) })).toEqual({ renewed: 0, closed: 1, failed: 0 });
      // Told one by one, naming why (the grants.maintenance line logs each at warn).
      expect(closures).toEqual([{ subscriptionId: id, plan: "zero", why: "plan grants nothing" }]);
      expect(await periodsOf(database.db, id)).toBe(0);
      expect((await entriesOf(database.db, id)).map((e) => [e.kind, e.amount])).toEqual([["GRANT", 5]]);
    });
  });

  describe("a plan that left the configuration", () => {
    it("closes the periods on it, and grant maintenance logs each subscription at warn with its plan and why", async () => {
      const [gone] = loadPlans(JSON.stringify([{ name: "gone", period: "1h", allowances: { ai: { allowance: 5 } } }]), undefined);
      const { id } = await openSubscription(database.db, { ownerId: "plan-gone", plan: "gone", actorId: "t", requestId: null, planDefinition: gone });
      await database.db.execute(sql`update plan_periods set period_end = now() - interval '1 second' where subscription_id = ${id}::uuid`);
      const captured = captureLogLines();
      const report = await runGrantMaintenance({ db: database.db, plans: [], logger: createLogger("info", captured.destination) });
      expect(report.renewal).toMatchObject({ closed: 1 });
      expect(captured.lines.filter((l) => l.event === "plans.period_closed")).toEqual([
        expect.objectContaining({ level: 40, subscriptionId: id, plan: "gone", why: "plan not configured" }),
      ]);
      expect(await periodsOf(database.db, id)).toBe(0);
    });
  });

  describe("the expiry pass and the renewal", () => {
    const [monthly] = loadPlans(JSON.stringify([{ name: "monthly", period: "1h", allowances: { ai: { allowance: 10, rolloverMax: 3 } } }]), undefined);

    // The two passes run independently (grant maintenance, several instances): the expiry pass
    // reaching an ended period's PLAN grant first must leave it to the renewal, which rolls part of it
    // over. The balance also has an expired promotional grant, so the expiry pass does visit it.
    it("an expiry pass run after the period ended but before its renewal leaves the plan credits to the renewal's rollover", async () => {
      const { id } = await openSubscription(database.db, { ownerId: "expiry-first", plan: "monthly", actorId: "t", requestId: null, planDefinition: monthly });
      await changeBalance(database.db, { subscriptionId: id, creditType: "ai", kind: "ADJUSTMENT", delta: -4, actorId: "t", reason: "spent", requestId: null });
      const promo = await grantWithTerms(
        database.db,
        { subscriptionId: id, creditType: "ai", kind: "GRANT", delta: 2, actorId: "t", reason: "promo", requestId: null },
        { category: "PROMOTIONAL", priority: 0, expiresAt: new Date(Date.now() + 3_600_000) },
      );
      await database.db.execute(sql`update credit_grants set expires_at = now() - interval '1 second' where entry_id = ${promo.id}::uuid`);
      // The period and its allowance's grant have ended (moved into the past rather than waited for;
      // to the millisecond, as the period ends the server computes are).
      await database.db.execute(
        sql`update plan_periods set period_end = date_trunc('milliseconds', now()) - interval '1 second' where subscription_id = ${id}::uuid`,
      );
      await database.db.execute(
        sql`update credit_grants set expires_at = (select period_end from plan_periods where subscription_id = ${id}::uuid)
             where subscription_id = ${id}::uuid and category = 'PLAN'`,
      );
      let before = (await entriesOf(database.db, id)).length;
      await expireDueGrants(database.db);
      // Only the promotional grant expired.
      expect((await entriesOf(database.db, id)).slice(before).map((e) => [e.kind, e.amount, e.balance_after])).toEqual([["EXPIRATION", -2, 6]]);
      expect(await balanceOf(database.db, id)).toBe(6);
      before = (await entriesOf(database.db, id)).length;
      expect((await renewDuePeriods(database.db, [monthly])).renewed).toBeGreaterThanOrEqual(1);
      // min(6 unused, rolloverMax 3) rolled over, the other 3 expired, then the new allowance.
      expect((await entriesOf(database.db, id)).slice(before).map((e) => [e.kind, e.amount, e.balance_after])).toEqual([
        ["GRANT", 3, 9],
        ["GRANT", 10, 19],
        ["ADJUSTMENT", -3, 16],
        ["EXPIRATION", -3, 13],
      ]);
      expect(await balanceOf(database.db, id)).toBe(13);
      expect(await auditLedgerAndGrants(database.db)).toMatchObject({ ok: true, mismatches: [] });
    });
  });

  describe("the cap at the largest balance", () => {
    let clock = Date.parse("2030-01-01T00:00:00Z");
    /** The next period end: any instant will do, credit_plan_renew takes the boundaries it is given. */
    const nextEnd = () => new Date((clock += 3_600_000)).toISOString();

    async function renew(sub: string, oldEnd: string, newEnd: string, allowance: number, rolloverMax: number): Promise<void> {
      await database.db.execute(
        sql`select credit_plan_renew(${sub}::uuid, 'ai', ${oldEnd}::timestamptz, ${newEnd}::timestamptz, ${allowance}::int, ${rolloverMax}::int, 'big')`,
      );
    }

    async function alertsOf(sub: string): Promise<string[]> {
      return (await queryRows<{ kind: string }>(database.db, sql`select kind from credit_alerts where subscription_id = ${sub}::uuid`)).map((r) => r.kind);
    }

    it("a billion rolled over beside a billion of allowance: the whole allowance is granted at every renewal", async () => {
      const sub = await fundedSubscription(database, "big-plan", {});
      let end = nextEnd();
      await database.db.execute(sql`select credit_plan_grant(${sub}::uuid, 'ai', ${BILLION}::int, ${end}::timestamptz, 'plan big: allowance')`);
      for (let renewal = 1; renewal <= 3; renewal++) {
        const before = (await entriesOf(database.db, sub)).length;
        const newEnd = nextEnd();
        await renew(sub, end, newEnd, BILLION, BILLION);
        end = newEnd;
        const entries = (await entriesOf(database.db, sub)).slice(before);
        // A billion rolled over and the whole allowance: 2,000,000,000 fits in a balance. (It used to
        // be capped against the balance in the middle of the renewal, before the old period's
        // credits went out: 147,483,647 of the allowance, then nothing at all.)
        expect(await balanceOf(database.db, sub), `renewal ${renewal}: ${JSON.stringify(entries)}`).toBe(2 * BILLION);
        const grants = entries.filter((e) => e.kind === "GRANT");
        expect(grants.map((e) => [e.amount, e.reason])).toEqual(
          expect.arrayContaining([
            [BILLION, "plan big: rollover"],
            [BILLION, "plan big: allowance"],
          ]),
        );
        expect(grants).toHaveLength(2);
        // Never past the largest balance, and never through 0 on the way (no false BALANCE_DEPLETED).
        for (const e of entries) {
          expect(e.balance_after).toBeGreaterThan(0);
          expect(e.balance_after).toBeLessThanOrEqual(MAX);
        }
      }
      const [{ n }] = await queryRows<{ n: number }>(
        database.db,
        sql`select count(*)::int as n from credit_grants where subscription_id = ${sub}::uuid and remaining > 0`,
      );
      expect(Number(n)).toBe(2);
      expect(await alertsOf(sub)).toEqual([]);
      expect(await auditLedgerAndGrants(database.db)).toMatchObject({ ok: true, mismatches: [] });
    });

    it("an allowance that does not fit is capped at the room left once the old period's credits are out, held credits counted", async () => {
      const sub = await fundedSubscription(database, "big-plan-capped", { ai: 1_500_000_000 });
      const held = await holdOne(database.db, {
        subscriptionId: sub,
        creditType: "ai",
        amount: 100,
        operation: "Mutation.test",
        estimated: 100,
        actorId: "tester",
        adminOverride: false,
        requestId: "test",
      });
      expect(held.ok).toBe(true);
      const end = nextEnd();
      await database.db.execute(sql`select credit_plan_grant(${sub}::uuid, 'ai', 300000000, ${end}::timestamptz, 'plan big: allowance')`);
      // 1,799,999,900 now; after the renewal: 1,499,999,900 paid + 200,000,000 rolled over + the allowance,
      // with 100 held: room for 447,483,647 of the billion.
      await renew(sub, end, nextEnd(), BILLION, 200_000_000);
      expect(await balanceOf(database.db, sub)).toBe(MAX - 100);
      const entries = await entriesOf(database.db, sub);
      expect(entries.filter((e) => e.kind === "GRANT" && e.reason?.startsWith("plan big")).map((e) => [e.amount, e.reason])).toEqual(
        expect.arrayContaining([
          [200_000_000, "plan big: rollover"],
          [447_483_647, "plan big: allowance (447483647 of 1000000000: capped at the largest balance)"],
        ]),
      );
      expect(await auditLedgerAndGrants(database.db)).toMatchObject({ ok: true, mismatches: [] });
    });

    it("keeps the documented order when everything fits: rollover in, allowance, rollover out, the rest expired", async () => {
      const sub = await fundedSubscription(database, "small-plan", {});
      const end = nextEnd();
      await database.db.execute(sql`select credit_plan_grant(${sub}::uuid, 'ai', 10, ${end}::timestamptz, 'plan big: allowance')`);
      await changeBalance(database.db, { subscriptionId: sub, creditType: "ai", kind: "ADJUSTMENT", delta: -4, actorId: "t", reason: "spent", requestId: null });
      await renew(sub, end, nextEnd(), 10, 3);
      expect((await entriesOf(database.db, sub)).slice(-4).map((e) => [e.kind, e.amount, e.balance_after])).toEqual([
        ["GRANT", 3, 9],
        ["GRANT", 10, 19],
        ["ADJUSTMENT", -3, 16],
        ["EXPIRATION", -3, 13],
      ]);
      expect(await auditLedgerAndGrants(database.db)).toMatchObject({ ok: true, mismatches: [] });
    });
  });

  // An outside audit changed a plan's period under subscriptions mid-way: the next end was counted
  // from the first period's start with the new period, re-counting every period lived through (10s →
  // 20s after 6 periods: one of 50 s; 20s → 10s: 9 renewals at once, 8 expired on arrival).
  describe("a plan whose period changed since the period that just ended", () => {
    const planOf = (period: string) =>
      loadPlans(JSON.stringify([{ name: "changing", period, allowances: { ai: { allowance: 10 } } }]), undefined)[0];

    /** Opens a subscription on the 1h plan, then puts it after its second period, `endedAgo` ago. */
    async function afterTwoHourlyPeriods(owner: string, endedAgo: string): Promise<{ id: string; end: Date }> {
      const { id } = await openSubscription(database.db, { ownerId: owner, plan: "changing", actorId: "t", requestId: null, planDefinition: planOf("1h") });
      const [row] = await queryRows<{ end: Date | string }>(
        database.db,
        sql`update plan_periods
               set anchor_at = date_trunc('milliseconds', now()) - interval '2 hours' - ${endedAgo}::interval, period_number = 2,
                   period_start = date_trunc('milliseconds', now()) - interval '1 hour' - ${endedAgo}::interval,
                   period_end = date_trunc('milliseconds', now()) - ${endedAgo}::interval
             where subscription_id = ${id}::uuid
         returning period_end as end`,
      );
      return { id, end: new Date(row.end) };
    }

    async function periodOf(id: string): Promise<{ anchor: number; n: number; end: number }> {
      const [row] = await queryRows<{ anchor_at: Date | string; period_number: number; period_end: Date | string }>(
        database.db,
        sql`select anchor_at, period_number, period_end from plan_periods where subscription_id = ${id}::uuid`,
      );
      return { anchor: new Date(row.anchor_at).getTime(), n: Number(row.period_number), end: new Date(row.period_end).getTime() };
    }

    it("lengthened (1h → 2h): the next period runs 2h from where the last one ended", async () => {
      const { id, end } = await afterTwoHourlyPeriods("period-longer", "1 minute");
      expect(await renewDuePeriods(database.db, [planOf("2h")])).toMatchObject({ renewed: 1, closed: 0, failed: 0 });
      expect(await periodOf(id)).toEqual({ anchor: end.getTime(), n: 1, end: end.getTime() + 2 * 3_600_000 });
      expect(await auditLedgerAndGrants(database.db)).toMatchObject({ ok: true, mismatches: [] });
    });

    it("shortened (1h → 600s): only the periods missed since the last end are renewed, and the next continues from them", async () => {
      const { id, end } = await afterTwoHourlyPeriods("period-shorter", "25 minutes");
      // From the end 25 minutes ago: periods ending 15 and 5 minutes ago, and the one running now.
      expect(await renewDuePeriods(database.db, [planOf("600s")])).toMatchObject({ renewed: 3, closed: 0, failed: 0 });
      expect(await periodOf(id)).toEqual({ anchor: end.getTime(), n: 3, end: end.getTime() + 30 * 60_000 });
      // Under the same period from then on, the anchor stays: the next renewal counts from it.
      await database.db.execute(sql`update plan_periods set period_end = now() - interval '1 second', anchor_at = now() - interval '1 second' - interval '1800 seconds' where subscription_id = ${id}::uuid`);
      const before = await periodOf(id);
      expect(await renewDuePeriods(database.db, [planOf("600s")])).toMatchObject({ renewed: 1 });
      expect(await periodOf(id)).toEqual({ anchor: before.anchor, n: 4, end: before.anchor + 40 * 60_000 });
      expect(await auditLedgerAndGrants(database.db)).toMatchObject({ ok: true, mismatches: [] });
    });
  });
});
