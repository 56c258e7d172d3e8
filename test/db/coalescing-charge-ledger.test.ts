/**
 * The coalescing charge ledger against a real database: concurrent debits of one balance become
 * batch statements that never overdraw it, grant in arrival order where the credits fit, fold the
 * subscription check into the debit, and settle in batches. On PGlite and PostgreSQL.
 */
import { randomUUID } from "node:crypto";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { fundedSubscription } from "../helpers/test-app.js";
import { ledgerEntries } from "../helpers/ledger-state.js";
import { awayFor } from "../helpers/unreachable-database.js";
import { queryRows, type Database } from "../../src/db/database.js";
import { auditLedger } from "../../src/ledger/audit.js";
import { holdGroups, type HoldRequest } from "../../src/ledger/hold.js";
import type { ChargeLedger } from "../../src/ledger/charge-ledger.js";
import { createCoalescingChargeLedger } from "../../src/ledger/coalescing-charge-ledger.js";
import { setSubscriptionStatus } from "../../src/subscriptions/subscription-store.js";

function debitOf(subscriptionId: string, amount: number, actorId = "owner", creditType = "leads"): HoldRequest {
  return {
    subscriptionId,
    creditType,
    amount,
    entryId: randomUUID(),
    operation: "Mutation.searchLeads",
    estimated: amount,
    actorId,
    adminOverride: false,
    requestId: `req-${randomUUID()}`,
    authorize: false,
    actorIsAdmin: false,
  };
}

/** An operation of one field: one hold, its outcome. */
async function holdOne(ledger: ChargeLedger, request: HoldRequest) {
  return (await ledger.hold([request]))[0];
}

/** Posts one hold; true when it was still pending. */
async function post(ledger: ChargeLedger, subscriptionId: string, entryId: string): Promise<boolean> {
  return (await ledger.settle([{ kind: "post", subscriptionId, entryId, actorId: null, requestId: null }]))[0].settled;
}

/** The database with every statement counted, to see how many the ledger sent. */
function countingStatements(db: Database): { db: Database; statements: () => number } {
  let count = 0;
  const counted = new Proxy(db, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (property !== "execute") return value;
      return (...args: unknown[]) => {
        count++;
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { db: counted, statements: () => count };
}

/** One statement holding each request as an operation of its own. */
async function holdOutcomes(db: Database, requests: HoldRequest[]) {
  return (await holdGroups(db, requests.map((r) => [r]))).map((group) => group[0]);
}

async function count(database: TestDatabase, query: ReturnType<typeof sql>): Promise<number> {
  const [row] = await queryRows<{ n: number | string }>(database.db, query);
  return Number(row.n);
}

describe.each(BACKENDS)("coalescing charge ledger on %s", (backend) => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase(backend);
  });
  afterAll(() => database?.dispose());

  it("200 concurrent 1-credit debits against 50 credits: exactly 50 granted, 150 refused, balance 0, audit clean", async () => {
    const sub = await fundedSubscription(database, "owner", { leads: 50 });
    const { db, statements } = countingStatements(database.db);
    const ledger = createCoalescingChargeLedger(db);

    const outcomes = await Promise.all(Array.from({ length: 200 }, () => holdOne(ledger, debitOf(sub, 1))));

    const granted = outcomes.filter((o) => o.ok);
    const refused = outcomes.filter((o) => !o.ok);
    expect(granted).toHaveLength(50);
    expect(refused).toHaveLength(150);
    expect(refused.every((o) => !o.ok && o.reason === "insufficient" && o.available === 0)).toBe(true);
    // Balances after each grant count down 49 … 0, each exactly once: no two debits saw the same balance.
    expect(granted.map((o) => (o.ok ? o.balanceAfter : -1)).sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    // One balance, one statement at a time: far fewer statements than requests.
    expect(statements()).toBeLessThan(20);

    const entries = await ledgerEntries(database, sub);
    expect(entries.filter((e) => e.kind === "DEBIT")).toHaveLength(50);
    expect(await count(database, sql`select balance as n from credit_balances where subscription_id = ${sub}::uuid and credit_type = 'leads'`)).toBe(0);
    expect(await count(database, sql`select count(*) as n from pending_charges where subscription_id = ${sub}::uuid`)).toBe(50);
    expect(await auditLedger(database.db)).toMatchObject({ ok: true, mismatches: [] });

    // Settling them, all at once, clears every pending mark; a second settle finds nothing to do.
    const settled = await Promise.all(granted.map((o) => post(ledger, sub, o.ok ? o.entryId : "")));
    expect(settled.every(Boolean)).toBe(true);
    expect(await count(database, sql`select count(*) as n from pending_charges where subscription_id = ${sub}::uuid`)).toBe(0);
    expect(await post(ledger, sub, granted[0].ok ? granted[0].entryId : "")).toBe(false);
    await ledger.idle();
  });

  it("mixed amounts in one batch are granted in arrival order where they fit", async () => {
    const sub = await fundedSubscription(database, "owner", { leads: 8 });
    const ledger = createCoalescingChargeLedger(database.db);
    // Submitted in one tick, so they share one statement: 5 fits (3 left), 4 does not, 2 fits (1
    // left), 1 fits (0 left), 3 does not — what running them one by one, in this order, would do.
    const outcomes = await Promise.all([5, 4, 2, 1, 3].map((amount) => holdOne(ledger, debitOf(sub, amount))));
    expect(outcomes.map((o) => (o.ok ? { ok: true, balanceAfter: o.balanceAfter } : o))).toEqual([
      { ok: true, balanceAfter: 3 },
      { ok: false, reason: "insufficient", available: 3 },
      { ok: true, balanceAfter: 1 },
      { ok: true, balanceAfter: 0 },
      { ok: false, reason: "insufficient", available: 0 },
    ]);
    const debits = (await ledgerEntries(database, sub)).filter((e) => e.kind === "DEBIT");
    expect(debits.map((e) => [e.amount, e.balance_after])).toEqual([
      [-5, 3],
      [-2, 1],
      [-1, 0],
    ]);
    expect(await auditLedger(database.db)).toMatchObject({ ok: true });
  });

  it("one statement serves several subscriptions, each walked on its own", async () => {
    const a = await fundedSubscription(database, "owner-a", { leads: 3 });
    const b = await fundedSubscription(database, "owner-b", { leads: 1, ai: 2 });
    const request = (subscriptionId: string, amount: number, actorId: string, creditType = "leads"): HoldRequest => ({
      ...debitOf(subscriptionId, amount, actorId, creditType),
      authorize: true,
    });
    const outcomes = await holdOutcomes(database.db, [
      request(a, 2, "owner-a"),
      request(b, 1, "owner-b"),
      request(a, 2, "owner-a"),
      request(b, 2, "owner-b", "ai"),
      request(b, 1, "owner-b"),
      request(a, 1, "owner-a"),
    ]);
    expect(outcomes.map((o) => (o.ok ? o.balanceAfter : o.reason))).toEqual([1, 0, "insufficient", 0, "insufficient", 0]);
    expect(await auditLedger(database.db)).toMatchObject({ ok: true });
  });

  it("folds the subscription check into the debit, refusing with what it saw and moving nothing", async () => {
    const sub = await fundedSubscription(database, "owner", { leads: 10 });
    const suspended = await fundedSubscription(database, "owner", { leads: 10 });
    await setSubscriptionStatus(database.db, suspended, "SUSPENDED", "test");
    const ledger = createCoalescingChargeLedger(database.db);
    const as = (request: HoldRequest, actorIsAdmin = false) => holdOne(ledger, { ...request, authorize: true, actorIsAdmin });

    const [missing, stranger, inactive, noBalance, owner, admin] = await Promise.all([
      as(debitOf(randomUUID(), 1)),
      as(debitOf(sub, 1, "stranger")),
      as(debitOf(suspended, 1)),
      as(debitOf(sub, 1, "owner", "no-such-type")),
      as(debitOf(sub, 2)),
      as(debitOf(sub, 3, "an-admin"), true),
    ]);
    expect(missing).toEqual({ ok: false, reason: "unauthorized", subscription: undefined });
    expect(stranger).toEqual({ ok: false, reason: "unauthorized", subscription: { ownerId: "owner", status: "ACTIVE" } });
    expect(inactive).toEqual({ ok: false, reason: "unauthorized", subscription: { ownerId: "owner", status: "SUSPENDED" } });
    expect(noBalance).toEqual({ ok: false, reason: "no-balance" });
    expect(owner).toMatchObject({ ok: true, balanceAfter: 8 });
    expect(admin).toMatchObject({ ok: true, balanceAfter: 5 });

    const suspendedEntries = await ledgerEntries(database, suspended);
    expect(suspendedEntries.map((e) => e.kind)).toEqual(["GRANT"]);
    expect((await ledgerEntries(database, sub)).map((e) => [e.kind, e.actor_id])).toEqual([
      ["GRANT", "test-setup"],
      ["DEBIT", "owner"],
      ["DEBIT", "an-admin"],
    ]);
    await Promise.all([owner, admin].map((o) => (o.ok ? post(ledger, sub, o.entryId) : undefined)));
    await ledger.idle();
  });

  it("a request the database refuses fails alone, not the batch it travelled in", async () => {
    const sub = await fundedSubscription(database, "owner", { leads: 10 });
    const ledger = createCoalescingChargeLedger(database.db);
    // PostgreSQL stores no NUL character in text: this actor id makes any statement carrying it fail.
    const results = await Promise.allSettled([
      holdOne(ledger, debitOf(sub, 1)),
      holdOne(ledger, debitOf(sub, 1, "own\u0000er")),
      holdOne(ledger, debitOf(sub, 2)),
    ]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect(results.map((r) => (r.status === "fulfilled" && r.value.ok ? r.value.balanceAfter : null)).filter((b) => b !== null).sort()).toEqual([7, 9]);
    await Promise.all(results.map((r) => (r.status === "fulfilled" && r.value.ok ? post(ledger, sub, r.value.entryId) : undefined)));
    expect(await auditLedger(database.db)).toMatchObject({ ok: true });
  });

  it("a batch the database refuses is tried group by group, and those statements survive a lost connection too", async () => {
    const sub = await fundedSubscription(database, "owner", { leads: 10 });
    // The first statement after the refused one loses its connection (a kill storm does not wait).
    let refusedSeen = false;
    const flaky = new Proxy(database.db, {
      get(target, prop, receiver) {
        if (prop !== "execute") return Reflect.get(target, prop, receiver);
        return async (query: unknown) => {
          if (refusedSeen) {
            refusedSeen = false;
            throw Object.assign(new Error("terminating connection due to administrator command"), { code: "57P01" });
          }
          try {
            return await (target.execute as (q: unknown) => Promise<unknown>)(query);
          } catch (err) {
            refusedSeen = true;
            throw err;
          }
        };
      },
    });
    // Submitted together, the four travel in one statement, which the NUL makes the database refuse.
    const ledger = createCoalescingChargeLedger(flaky, { holdRetryDelaysMs: [1, 1, 1] });
    const results = await Promise.allSettled([
      holdOne(ledger, debitOf(sub, 1)),
      holdOne(ledger, debitOf(sub, 1, "own\u0000er")),
      holdOne(ledger, debitOf(sub, 2)),
      holdOne(ledger, debitOf(sub, 3)),
    ]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled", "fulfilled"]);
    expect(await count(database, sql`select count(*)::int as n from credit_ledger where subscription_id = ${sub}::uuid and kind = 'DEBIT'`)).toBe(3);
    await Promise.all(results.map((r) => (r.status === "fulfilled" && r.value.ok ? post(ledger, sub, r.value.entryId) : undefined)));
    expect(await auditLedger(database.db)).toMatchObject({ ok: true });
  });

  it("refunds a pending charge whole, once", async () => {
    const sub = await fundedSubscription(database, "owner", { leads: 4 });
    const ledger = createCoalescingChargeLedger(database.db);
    const debit = await holdOne(ledger, debitOf(sub, 3));
    if (!debit.ok) throw new Error("the debit was refused");
    const voidIt = (reason: string) => ledger.settle([{ kind: "void", subscriptionId: sub, entryId: debit.entryId, reason, actorId: null, requestId: null }]);
    expect(await voidIt("system error")).toEqual([{ settled: true, returned: 3, balanceAfter: 4 }]);
    const refund = (await ledgerEntries(database, sub)).at(-1)!;
    expect(refund).toMatchObject({ kind: "REFUND", amount: 3, balance_after: 4, refund_of: debit.entryId });
    expect(await voidIt("again")).toEqual([{ settled: false }]);
    expect(await post(ledger, sub, debit.entryId)).toBe(false);
    expect(await auditLedger(database.db)).toMatchObject({ ok: true });
  });

  it("holds an operation's group all or nothing, in arrival order with the other groups of its statement", async () => {
    const sub = await fundedSubscription(database, "owner", { leads: 5, ai: 1 });
    const outcomes = await holdGroups(database.db, [
      // 3 leads + 1 ai: fits (2 leads, 0 ai left).
      [debitOf(sub, 3), debitOf(sub, 1, "owner", "ai")],
      // 1 + 1 leads would fit, but 1 ai does not: none of it is held.
      [debitOf(sub, 1), debitOf(sub, 1), debitOf(sub, 1, "owner", "ai")],
      // 2 leads: still fits, because the group before it took nothing.
      [debitOf(sub, 2)],
      // 1 + 1 leads against 0 left: refused, the short balance reports what was there.
      [debitOf(sub, 1), debitOf(sub, 1)],
    ]);
    expect(outcomes.map((group) => group.map((o) => (o.ok ? o.balanceAfter : o.reason)))).toEqual([
      [2, 0],
      ["group-refused", "group-refused", "insufficient"],
      [0],
      ["insufficient", "insufficient"],
    ]);
    expect(outcomes[3][0]).toEqual({ ok: false, reason: "insufficient", available: 0 });
    const debits = (await ledgerEntries(database, sub)).filter((e) => e.kind === "DEBIT");
    expect(debits.map((e) => [e.amount, e.balance_after])).toEqual([
      [-3, 2],
      [-1, 0],
      [-2, 0],
    ]);
    expect(await count(database, sql`select count(*) as n from pending_charges where subscription_id = ${sub}::uuid`)).toBe(3);
    expect(await auditLedger(database.db)).toMatchObject({ ok: true });
  });

  it("settles one operation's holds in one statement: posts, releases the unused part, voids; never beyond the hold", async () => {
    const sub = await fundedSubscription(database, "owner", { leads: 20 });
    const ledger = createCoalescingChargeLedger(database.db);
    const [a, b, c] = await ledger.hold([debitOf(sub, 5), debitOf(sub, 5), debitOf(sub, 5)]);
    if (!a.ok || !b.ok || !c.ok) throw new Error("the holds were refused");
    const outcomes = await ledger.settle([
      { kind: "post", subscriptionId: sub, entryId: a.entryId, actorId: null, requestId: "r" },
      // Asking to release more than the hold returns the hold, no more.
      { kind: "release", subscriptionId: sub, entryId: b.entryId, amount: 9, actorId: null, requestId: "r" },
      { kind: "void", subscriptionId: sub, entryId: c.entryId, reason: "result not delivered", actorId: null, requestId: "r" },
    ]);
    expect(outcomes).toEqual([
      { settled: true, returned: 0, balanceAfter: undefined },
      { settled: true, returned: 5, balanceAfter: 10 },
      { settled: true, returned: 5, balanceAfter: 15 },
    ]);
    const entries = await ledgerEntries(database, sub);
    expect(entries.filter((e) => e.kind !== "GRANT").map((e) => [e.kind, e.amount, e.balance_after])).toEqual([
      ["DEBIT", -5, 15],
      ["DEBIT", -5, 10],
      ["DEBIT", -5, 5],
      ["RELEASE", 5, 10],
      ["REFUND", 5, 15],
    ]);
    // Settled once: the same settlements again find nothing pending.
    expect(await ledger.settle([{ kind: "release", subscriptionId: sub, entryId: b.entryId, amount: 1, actorId: null, requestId: "r" }])).toEqual([{ settled: false }]);
    expect(await auditLedger(database.db)).toMatchObject({ ok: true });
    await ledger.idle();
  });

  it("the ledger trigger keeps releases plus refunds of a debit at or below it", async () => {
    const sub = await fundedSubscription(database, "owner", { leads: 10 });
    const [held] = await holdGroups(database.db, [[debitOf(sub, 4)]]);
    if (!held[0].ok) throw new Error("refused");
    const entryId = held[0].entryId;
    const insert = (kind: string, amount: number) =>
      database.db.execute(sql`
        with b as (update credit_balances set balance = balance + ${amount}::int where subscription_id = ${sub}::uuid and credit_type = 'leads' returning balance)
        insert into credit_ledger (subscription_id, credit_type, kind, amount, balance_after, refund_of)
        select ${sub}::uuid, 'leads', ${kind}, ${amount}::int, balance, ${entryId}::uuid from b`);
    await insert("RELEASE", 3);
    await expect(insert("REFUND", 2)).rejects.toThrow();
    await insert("REFUND", 1);
    await expect(insert("RELEASE", 1)).rejects.toThrow();
  });

  it("a database away for 3 s (as while it restarts) does not fail the holds waiting for it: each is held once", async () => {
    const sub = await fundedSubscription(database, "owner", { leads: 10 });
    const ledger = createCoalescingChargeLedger(awayFor(database.db, 3_000));
    const outcomes = (await Promise.all([ledger.hold([debitOf(sub, 2)]), ledger.hold([debitOf(sub, 3)])])).flat();
    expect(outcomes.every((o) => o.ok)).toBe(true);
    expect((await ledgerEntries(database, sub)).filter((e) => e.kind === "DEBIT")).toHaveLength(2);
    expect(await count(database, sql`select balance as n from credit_balances where subscription_id = ${sub}::uuid and credit_type = 'leads'`)).toBe(5);
    await ledger.idle();
  });

  it.each(["before", "after"] as const)(
    "a hold statement whose connection dies %s it runs is looked up and retried: granted once, never twice",
    async (when) => {
      const sub = await fundedSubscription(database, "owner", { leads: 10 });
      let failed = false;
      const flaky = new Proxy(database.db, {
        get(target, prop, receiver) {
          if (prop !== "execute") return Reflect.get(target, prop, receiver);
          return async (query: unknown) => {
            if (!failed && when === "before") {
              failed = true;
              throw Object.assign(new Error("Connection terminated unexpectedly"), { code: "57P01" });
            }
            const result = await (target.execute as (q: unknown) => Promise<unknown>)(query);
            if (!failed) {
              failed = true;
              throw new Error("Connection terminated unexpectedly");
            }
            return result;
          };
        },
      });
      const ledger = createCoalescingChargeLedger(flaky, { holdRetryDelaysMs: [1, 1, 1] });
      const [a, b] = await Promise.all([ledger.hold([debitOf(sub, 2), debitOf(sub, 1)]), ledger.hold([debitOf(sub, 3)])]);
      expect([...a, ...b].every((o) => o.ok)).toBe(true);
      const debits = (await ledgerEntries(database, sub)).filter((e) => e.kind === "DEBIT");
      expect(debits).toHaveLength(3);
      expect([...a, ...b].map((o) => (o.ok ? o.balanceAfter : -1)).sort()).toEqual(debits.map((d) => d.balance_after).sort());
      expect(await count(database, sql`select balance as n from credit_balances where subscription_id = ${sub}::uuid and credit_type = 'leads'`)).toBe(4);
      expect(await auditLedger(database.db)).toMatchObject({ ok: true });
      await ledger.idle();
    },
  );
});
