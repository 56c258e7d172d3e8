/**
 * Room for held credits (drizzle/0016_balance_room.sql), on both backends:
 * - credits added while a hold is open (a grant, a positive adjustment, an admin refund) must leave
 *   room for the hold's credits to come back, or the hold's release would overflow the balance and
 *   stay open, retried by recovery for ever;
 * - a plan's grants, which no one is there to refuse, are capped at the room left;
 * - one subscription whose renewal fails, or one balance whose expiry fails, does not stop the
 *   renewals and expiries of the others;
 * - a settlement whose release goes back into a grant that expired meanwhile reports the balance
 *   after the EXPIRATION that follows it.
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows, type Database } from "../../src/db/database.js";
import { sqlState } from "../../src/db/errors.js";
import { auditLedgerAndGrants } from "../../src/grants/grant-audit.js";
import { grantWithTerms } from "../../src/grants/grant-credits.js";
import { expireDueGrants } from "../../src/grants/expiry.js";
import { changeBalance } from "../../src/ledger/change-balance.js";
import { runLedgerCommand } from "../../src/ledger/charge-ledger.js";
import { refundDebit } from "../../src/ledger/refund-charge.js";
import { loadPlans } from "../../src/plans/plan-config.js";
import { renewDuePeriods } from "../../src/plans/plan-periods.js";
import { openSubscription } from "../../src/subscriptions/subscription-store.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { holdOne, postHold } from "../helpers/ledger-commands.js";
import { fundedSubscription } from "../helpers/test-app.js";

const MAX = 2_147_483_647;
const NUMERIC_OUT_OF_RANGE = "22003";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function balanceOf(db: Database, subscriptionId: string, type = "ai"): Promise<number> {
  const [row] = await queryRows<{ balance: number }>(
    db,
    sql`select balance from credit_balances where subscription_id = ${subscriptionId}::uuid and credit_type = ${type}`,
  );
  return Number(row.balance);
}

const change = (subscriptionId: string, delta: number, kind: "GRANT" | "ADJUSTMENT" = "GRANT") => ({
  subscriptionId,
  creditType: "ai",
  kind,
  delta,
  actorId: "admin",
  reason: "test",
  requestId: null,
});

describe.each(BACKENDS)("room for held credits on %s", (backend) => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase(backend);
  });
  afterAll(() => database?.dispose());

  async function holdAi(subscriptionId: string, amount: number): Promise<string> {
    const outcome = await holdOne(database.db, {
      subscriptionId,
      creditType: "ai",
      amount,
      operation: "Mutation.test",
      estimated: amount,
      actorId: "tester",
      adminOverride: false,
      requestId: "test",
    });
    if (!outcome.ok) throw new Error(`hold refused: ${JSON.stringify(outcome)}`);
    return outcome.entryId;
  }

  async function release(subscriptionId: string, entryId: string, amount: number) {
    const [outcome] = await runLedgerCommand(database.db, {
      kind: "settle",
      settlements: [{ kind: "release", subscriptionId, entryId, amount, actorId: null, requestId: null }],
    });
    return outcome;
  }

  it("credits added during a hold leave room for the hold to come back, so its release settles", async () => {
    const sub = await fundedSubscription(database, "room-owner", { ai: 100 });
    const entryId = await holdAi(sub, 12); // 88 left, 12 held
    const fill = MAX - 88; // would fill the balance row exactly, with no room for the 12 held

    for (const write of [
      () => changeBalance(database.db, change(sub, fill)),
      () => changeBalance(database.db, change(sub, fill, "ADJUSTMENT")),
      () => grantWithTerms(database.db, change(sub, fill), { category: "PAID", priority: 50, expiresAt: null }),
    ]) {
      await expect(write()).rejects.toSatisfy((err) => sqlState(err) === NUMERIC_OUT_OF_RANGE);
    }
    expect(await balanceOf(database.db, sub)).toBe(88);

    // Up to the room the held credits leave is fine.
    await changeBalance(database.db, change(sub, fill - 12));
    expect(await balanceOf(database.db, sub)).toBe(MAX - 12);
    const outcome = await release(sub, entryId, 5);
    expect(outcome).toEqual({ settled: true, returned: 5, balanceAfter: MAX - 7 });
    expect(await auditLedgerAndGrants(database.db)).toMatchObject({ ok: true, mismatches: [] });
  });

  it("an admin refund leaves room for the balance's held credits too", async () => {
    const sub = await fundedSubscription(database, "room-owner", { ai: 100 });
    const settledDebit = await holdAi(sub, 10);
    expect(await postHold(database.db, sub, settledDebit)).toBe(true); // the call cost 10
    await holdAi(sub, 20); // 70 left, 20 held
    await changeBalance(database.db, change(sub, MAX - 70 - 20 - 5)); // room for 5 more
    expect(await refundDebit(database.db, { entryId: settledDebit, amount: 6, actorId: "admin", reason: "r", requestId: "test" })).toEqual({
      ok: false,
      reason: "overflow",
    });
    expect(await refundDebit(database.db, { entryId: settledDebit, amount: 5, actorId: "admin", reason: "r", requestId: "test" })).toMatchObject({
      ok: true,
    });
    expect(await balanceOf(database.db, sub)).toBe(MAX - 20);
  });

  it("a plan grant is capped at the room left, and says so in its reason", async () => {
    const sub = await fundedSubscription(database, "room-owner", { ai: 100 });
    await holdAi(sub, 30); // 70 left, 30 held
    await changeBalance(database.db, change(sub, MAX - 70 - 30 - 4)); // room for 4
    const expires = new Date(Date.now() + 60_000).toISOString();
    await database.db.execute(sql`select credit_plan_grant(${sub}::uuid, 'ai', 10, ${expires}::timestamptz, 'plan p: allowance')`);
    expect(await balanceOf(database.db, sub)).toBe(MAX - 30);
    const [entry] = await queryRows<{ amount: number; reason: string }>(
      database.db,
      sql`select amount, reason from credit_ledger where subscription_id = ${sub}::uuid and kind = 'GRANT' order by seq desc limit 1`,
    );
    expect(entry).toEqual({ amount: 4, reason: "plan p: allowance (4 of 10: capped at the largest balance)" });

    // No room at all: nothing is granted, and nothing fails.
    await database.db.execute(sql`select credit_plan_grant(${sub}::uuid, 'ai', 10, ${expires}::timestamptz, 'plan p: allowance')`);
    expect(await balanceOf(database.db, sub)).toBe(MAX - 30);
    expect(await auditLedgerAndGrants(database.db)).toMatchObject({ ok: true, mismatches: [] });
  });

  it("one subscription's failed renewal or expiry does not stop the others'", async () => {
    const plan = loadPlans(JSON.stringify([{ name: "room-tiny", period: "1s", allowances: { ai: { allowance: 5 } } }]), undefined)[0];
    const open = async (ownerId: string) =>
      (await openSubscription(database.db, { ownerId, plan: "room-tiny", actorId: "t", requestId: null, planDefinition: plan })).id;
    const broken = await open("room-broken");
    const healthy = await open("room-healthy");
    const brokenPromo = await fundedSubscription(database, "room-broken-promo", {});
    const healthyPromo = await fundedSubscription(database, "room-healthy-promo", {});
    for (const sub of [brokenPromo, healthyPromo]) {
      await grantWithTerms(database.db, change(sub, 3), { category: "PROMOTIONAL", priority: 10, expiresAt: new Date(Date.now() + 300) });
    }
    // A fault of the database for two of them: every ledger entry they would write fails.
    await database.db.execute(sql.raw(`
      create or replace function room_test_fault() returns trigger language plpgsql as $$
      begin raise exception 'injected fault'; end $$`));
    await database.db.execute(sql.raw(`
      create trigger room_test_fault before insert on credit_ledger for each row
        when (new.subscription_id in ('${broken}'::uuid, '${brokenPromo}'::uuid)) execute function room_test_fault()`));
    try {
      await sleep(1_200);
      const renewalFailures: string[] = [];
      const renewal = await renewDuePeriods(database.db, [plan], (id) => renewalFailures.push(id));
      expect(renewalFailures).toEqual([broken]);
      expect(renewal.failed).toBe(1);
      expect(renewal.renewed).toBeGreaterThanOrEqual(1);
      const expiryFailures: string[] = [];
      const expiry = await expireDueGrants(database.db, 1, (balance) => expiryFailures.push(balance.subscriptionId));
      expect(expiryFailures).toContain(brokenPromo);
      expect(expiry.failed).toBeGreaterThanOrEqual(1);
      expect(await balanceOf(database.db, healthyPromo)).toBe(0);
      expect(await balanceOf(database.db, brokenPromo)).toBe(3);
      const [period] = await queryRows<{ period_number: number }>(
        database.db,
        sql`select period_number from plan_periods where subscription_id = ${healthy}::uuid`,
      );
      expect(Number(period.period_number)).toBeGreaterThan(1);
    } finally {
      await database.db.execute(sql.raw(`drop trigger room_test_fault on credit_ledger`));
      await database.db.execute(sql.raw(`drop function room_test_fault()`));
    }
    // Once the fault is gone, the next pass catches them up.
    expect((await renewDuePeriods(database.db, [plan])).failed).toBe(0);
    expect((await expireDueGrants(database.db)).failed).toBe(0);
    expect(await balanceOf(database.db, brokenPromo)).toBe(0);
    expect(await auditLedgerAndGrants(database.db)).toMatchObject({ ok: true, mismatches: [] });
  });

  it("a release into a grant that expired meanwhile reports the balance after the EXPIRATION that follows it", async () => {
    const sub = await fundedSubscription(database, "room-owner", {});
    await grantWithTerms(database.db, change(sub, 10), { category: "PROMOTIONAL", priority: 10, expiresAt: new Date(Date.now() + 400) });
    await changeBalance(database.db, change(sub, 2)); // a PAID grant of 2, spent after the promotional one
    const entryId = await holdAi(sub, 8); // drawn from the promotional grant: 4 left in the balance
    await sleep(600);
    const outcome = await release(sub, entryId, 5);
    // The 5 released went back into the expired grant and expired at once: the balance row is 4 again.
    // Reported as credits available (migration 0020): the paid grant's 2, not the 2 the expired
    // promotional grant still holds until the expiry pass removes them.
    expect(outcome).toEqual({ settled: true, returned: 5, balanceAfter: 2 });
    expect(await balanceOf(database.db, sub)).toBe(4);
    const kinds = await queryRows<{ kind: string; amount: number; balance_after: number }>(
      database.db,
      sql`select kind, amount, balance_after from credit_ledger where subscription_id = ${sub}::uuid order by seq`,
    );
    expect(kinds.slice(-2)).toEqual([
      { kind: "RELEASE", amount: 5, balance_after: 9 },
      { kind: "EXPIRATION", amount: -5, balance_after: 4 },
    ]);
    expect(await auditLedgerAndGrants(database.db)).toMatchObject({ ok: true, mismatches: [] });
  });
});
