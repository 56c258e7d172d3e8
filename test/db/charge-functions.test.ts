/**
 * The charge functions of drizzle/0010_charge_functions.sql write the usual case's grant draws for a
 * whole batch themselves (instead of the per-row ledger trigger), and the refund limit is checked
 * once per statement. These cases pin down that the result is exactly what the per-row bookkeeping
 * did: draws in spending order hold by hold, returns to the grant drawn from (expiring at once when
 * it has expired), and no statement returning more of a debit than it took.
 */
import { randomUUID } from "node:crypto";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows, type Database } from "../../src/db/database.js";
import { sqlState, violatedConstraint } from "../../src/db/errors.js";
import { auditLedgerAndGrants } from "../../src/grants/grant-audit.js";
import { grantWithTerms, type GrantTerms } from "../../src/grants/grant-credits.js";
import { holdGroups, type HoldRequest } from "../../src/ledger/hold.js";
import { settleHolds } from "../../src/ledger/settle.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { fundedSubscription } from "../helpers/test-app.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function addGrant(db: Database, subscriptionId: string, amount: number, terms: Partial<GrantTerms> = {}): Promise<string> {
  const entry = await grantWithTerms(
    db,
    { subscriptionId, creditType: "ai", kind: "GRANT", delta: amount, actorId: "test", reason: "test", requestId: null },
    { category: "PAID", priority: 50, expiresAt: null, ...terms },
  );
  const [row] = await queryRows<{ id: string }>(db, sql`select id from credit_grants where entry_id = ${entry.id}::uuid`);
  return row.id;
}

function hold(subscriptionId: string, amount: number): HoldRequest {
  return {
    subscriptionId,
    creditType: "ai",
    amount,
    entryId: randomUUID(),
    operation: "Mutation.test",
    estimated: amount,
    actorId: "tester",
    adminOverride: false,
    requestId: "test",
    authorize: false,
    actorIsAdmin: false,
  };
}

async function draws(db: Database, entryId: string): Promise<unknown> {
  const [row] = await queryRows<{ draws: unknown }>(db, sql`select draws from credit_ledger where id = ${entryId}::uuid`);
  return row.draws;
}

async function remaining(db: Database, grantId: string): Promise<number> {
  const [row] = await queryRows<{ remaining: number }>(db, sql`select remaining from credit_grants where id = ${grantId}::uuid`);
  return Number(row.remaining);
}

describe.each(BACKENDS)("charge functions on %s", (backend) => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase(backend);
  });
  afterAll(() => database?.dispose());

  it("a batch whose first grant covers it draws every hold from that grant, in one statement", async () => {
    const sub = await fundedSubscription(database, "cf-owner-1", {});
    const first = await addGrant(database.db, sub, 10, { priority: 10 });
    const later = await addGrant(database.db, sub, 10, { priority: 90 });
    const holds = [hold(sub, 3), hold(sub, 4), hold(sub, 2)];
    const outcomes = await holdGroups(database.db, holds.map((h) => [h]));
    expect(outcomes.map(([o]) => o.ok)).toEqual([true, true, true]);
    for (const h of holds) expect(await draws(database.db, h.entryId)).toEqual([{ grantId: first, amount: h.amount }]);
    expect(await remaining(database.db, first)).toBe(1);
    expect(await remaining(database.db, later)).toBe(10);
    await settleHolds(database.db, holds.map((h) => ({ kind: "post" as const, subscriptionId: sub, entryId: h.entryId, actorId: null, requestId: null })));
    expect(await auditLedgerAndGrants(database.db)).toMatchObject({ ok: true, mismatches: [] });
  });

  it("a batch its first grant cannot cover draws hold by hold in spending order, across grants", async () => {
    const sub = await fundedSubscription(database, "cf-owner-2", {});
    const first = await addGrant(database.db, sub, 5, { priority: 10 });
    const later = await addGrant(database.db, sub, 10, { priority: 90 });
    const holds = [hold(sub, 3), hold(sub, 3), hold(sub, 2)];
    const outcomes = await holdGroups(database.db, holds.map((h) => [h]));
    expect(outcomes.map(([o]) => o.ok)).toEqual([true, true, true]);
    expect(await draws(database.db, holds[0].entryId)).toEqual([{ grantId: first, amount: 3 }]);
    expect(await draws(database.db, holds[1].entryId)).toEqual([{ grantId: first, amount: 2 }, { grantId: later, amount: 1 }]);
    expect(await draws(database.db, holds[2].entryId)).toEqual([{ grantId: later, amount: 2 }]);
    expect(await remaining(database.db, first)).toBe(0);
    expect(await remaining(database.db, later)).toBe(7);
    await settleHolds(database.db, holds.map((h) => ({ kind: "post" as const, subscriptionId: sub, entryId: h.entryId, actorId: null, requestId: null })));
    expect(await auditLedgerAndGrants(database.db)).toMatchObject({ ok: true, mismatches: [] });
  });

  it("of two grants with the same priority and expiry, the older is drawn first", async () => {
    const sub = await fundedSubscription(database, "cf-owner-tie", {});
    const expiresAt = new Date(Date.now() + 3_600_000);
    const older = await addGrant(database.db, sub, 5, { priority: 20, expiresAt });
    const newer = await addGrant(database.db, sub, 5, { priority: 20, expiresAt });
    // Two statements: the first hold is covered by the first grant (the function draws it itself),
    // the second is not (drawn hold by hold, across grants).
    const holds = [hold(sub, 3), hold(sub, 4)];
    for (const h of holds) expect((await holdGroups(database.db, [[h]]))[0][0].ok).toBe(true);
    expect(await draws(database.db, holds[0].entryId)).toEqual([{ grantId: older, amount: 3 }]);
    expect(await draws(database.db, holds[1].entryId)).toEqual([{ grantId: older, amount: 2 }, { grantId: newer, amount: 2 }]);
    expect(await remaining(database.db, older)).toBe(0);
    expect(await remaining(database.db, newer)).toBe(3);
    await settleHolds(database.db, holds.map((h) => ({ kind: "post" as const, subscriptionId: sub, entryId: h.entryId, actorId: null, requestId: null })));
    expect(await auditLedgerAndGrants(database.db)).toMatchObject({ ok: true, mismatches: [] });
  });

  it("a settlement gives releases and refunds back to the one grant drawn from; to an expired one they expire at once", async () => {
    const sub = await fundedSubscription(database, "cf-owner-3", {});
    const soon = await addGrant(database.db, sub, 10, { priority: 0, expiresAt: new Date(Date.now() + 600) });
    const holds = [hold(sub, 4), hold(sub, 3)];
    await holdGroups(database.db, holds.map((h) => [h]));
    expect(await remaining(database.db, soon)).toBe(3);
    await sleep(700);
    const outcomes = await settleHolds(database.db, [
      { kind: "release", subscriptionId: sub, entryId: holds[0].entryId, amount: 3, actorId: null, requestId: null },
      { kind: "void", subscriptionId: sub, entryId: holds[1].entryId, reason: "system error", actorId: null, requestId: null },
    ]);
    expect(outcomes.map((o) => o.settled)).toEqual([true, true]);
    const entries = await queryRows<{ kind: string; amount: number; draws: unknown }>(
      database.db,
      sql`select kind, amount, draws from credit_ledger where subscription_id = ${sub}::uuid and kind in ('RELEASE', 'REFUND', 'EXPIRATION') order by seq`,
    );
    expect(entries).toEqual([
      { kind: "RELEASE", amount: 3, draws: [{ grantId: soon, amount: 3, expired: true }] },
      { kind: "REFUND", amount: 3, draws: [{ grantId: soon, amount: 3, expired: true }] },
      { kind: "EXPIRATION", amount: -3, draws: [{ grantId: soon, amount: 3 }] },
      { kind: "EXPIRATION", amount: -3, draws: [{ grantId: soon, amount: 3 }] },
    ]);
    // What the grant has left (3, expired) is the expiry pass's to remove; the returns expired at once.
    expect(await remaining(database.db, soon)).toBe(3);
    expect(await auditLedgerAndGrants(database.db)).toMatchObject({ ok: true, mismatches: [] });
  });

  it("one statement returning more of a debit than it took is refused whole, naming the refund limit", async () => {
    const sub = await fundedSubscription(database, "cf-owner-4", { ai: 10 });
    const debit = hold(sub, 4);
    await holdGroups(database.db, [[debit]]);
    const before = await queryRows<{ n: number | string }>(database.db, sql`select count(*) as n from credit_ledger where subscription_id = ${sub}::uuid`);
    const err = await database.db
      .execute(
        sql`with credited as (
              update credit_balances set balance = balance + 5 where subscription_id = ${sub}::uuid and credit_type = 'ai' returning balance)
            insert into credit_ledger (subscription_id, credit_type, kind, amount, balance_after, refund_of)
            select ${sub}::uuid, 'ai', k, a, c.balance, ${debit.entryId}::uuid
              from credited c, (values ('RELEASE', 3), ('REFUND', 2)) as r(k, a)`,
      )
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(sqlState(err)).toBe("23514");
    expect(violatedConstraint(err)).toBe("credit_ledger_refund_limit");
    const after = await queryRows<{ n: number | string }>(database.db, sql`select count(*) as n from credit_ledger where subscription_id = ${sub}::uuid`);
    expect(Number(after[0].n)).toBe(Number(before[0].n));

    const notADebit = await database.db
      .execute(
        sql`insert into credit_ledger (subscription_id, credit_type, kind, amount, balance_after, refund_of)
            values (${sub}::uuid, 'ai', 'REFUND', 1, 7, ${randomUUID()}::uuid)`,
      )
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(sqlState(notADebit)).toBe("23514");
    expect(String((notADebit as { cause?: Error }).cause?.message ?? (notADebit as Error).message)).toMatch(/is not a DEBIT/);
  });
});
