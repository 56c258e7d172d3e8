/**
 * Balance alerts when credits are given back to a grant that has expired meanwhile (an outside
 * audit). The return (an admin's REFUND, or a settlement's RELEASE) is followed in the same statement
 * by the EXPIRATION that removes those credits at once. The audit's case: 1 PROMOTIONAL credit
 * expiring in seconds, a debit of it (1 → 0, BALANCE_DEPLETED), once it has expired a refund of that
 * debit (REFUND +1 → 1, EXPIRATION −1 → 0), then a grant of 5 (0 → 5). The alerts were stored
 * DEPLETED (debit), DEPLETED (expiration), RECOVERED (refund): the EXPIRATION, written by a nested
 * statement of a row trigger, had its crossings derived before the REFUND's; the balance's alert
 * state ended "recovered" at 0, and the grant's real recovery raised nothing. Its live events were
 * out of order too (the REFUND's, with the lower seq, came after the EXPIRATION's and was dropped
 * as older news). Each crossing must be raised once, in the order of the entries.
 */
import { randomUUID } from "node:crypto";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows, type Database } from "../../src/db/database.js";
import { auditLedgerAndGrants } from "../../src/grants/grant-audit.js";
import { grantWithTerms, type GrantTerms } from "../../src/grants/grant-credits.js";
import { createCoalescingChargeLedger, type CoalescingChargeLedger } from "../../src/ledger/coalescing-charge-ledger.js";
import { refundDebit } from "../../src/ledger/refund-charge.js";
import { settleHolds } from "../../src/ledger/settle.js";
import { writeLowBalanceThreshold } from "../../src/live/live-store.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { fundedSubscription } from "../helpers/test-app.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const EXPIRY_MS = 600;

function addGrant(db: Database, subscriptionId: string, amount: number, terms: Partial<GrantTerms> = {}) {
  return grantWithTerms(
    db,
    { subscriptionId, creditType: "ai", kind: "GRANT", delta: amount, actorId: "admin", reason: "test", requestId: null },
    { category: "PAID", priority: 50, expiresAt: null, ...terms },
  );
}

/** A hold of `amount` ai credits, one call in its own batch; returns its DEBIT entry's id. */
async function holdCredits(ledger: CoalescingChargeLedger, subscriptionId: string, amount: number): Promise<string> {
  const [outcome] = await ledger.hold([
    {
      subscriptionId,
      creditType: "ai",
      amount,
      operation: "Mutation.searchLeads",
      estimated: amount,
      actorId: "owner",
      adminOverride: false,
      requestId: "req",
      entryId: randomUUID(),
      authorize: false,
      actorIsAdmin: false,
    },
  ]);
  if (!outcome.ok) throw new Error(`hold refused: ${JSON.stringify(outcome)}`);
  expect(outcome.balanceAfter).toBe(0);
  return outcome.entryId;
}

interface Alert {
  kind: string;
  entryKind: string;
  balance: number;
  entrySeq: number;
}

/** The balance alerts stored for the subscription, oldest first, with the seq of the entry each names. */
async function alertsOf(db: Database, subscriptionId: string): Promise<Alert[]> {
  const rows = await queryRows<{ kind: string; entry_kind: string; balance: number; entry_seq: string | number }>(
    db,
    sql`select a.kind, a.details ->> 'entryKind' as entry_kind, (a.details ->> 'balance')::int as balance, l.seq as entry_seq
          from credit_alerts a
          join credit_ledger l on l.subscription_id = a.subscription_id and l.id = (a.details ->> 'entryId')::uuid
         where a.subscription_id = ${subscriptionId}::uuid
         order by a.seq`,
  );
  return rows.map((r) => ({ kind: r.kind, entryKind: r.entry_kind, balance: Number(r.balance), entrySeq: Number(r.entry_seq) }));
}

async function alertedState(db: Database, subscriptionId: string): Promise<boolean | undefined> {
  const [row] = await queryRows<{ alerted: boolean }>(
    db,
    sql`select alerted from credit_balance_thresholds where subscription_id = ${subscriptionId}::uuid and credit_type = 'ai'`,
  );
  return row?.alerted;
}

/**
 * The live-balance outbox items of the subscription, in the order the relay sends them:
 * [last entry kind, balance, crossing, last entry seq] (the payload of drizzle/0012).
 */
async function outboxItems(db: Database, subscriptionId: string): Promise<[string, number, string | null, number][]> {
  const rows = await queryRows<{ payload: string }>(db, sql`select payload from credit_balance_change_outbox order by id`);
  return rows
    .flatMap((row) => JSON.parse(row.payload) as unknown[][])
    .filter((item) => item[0] === subscriptionId && item[1] === "ai")
    .map((item) => [item[5] as string, Number(item[2]), (item[9] as string | null) ?? null, Number(item[7])]);
}

const kinds = (alerts: Alert[]) => alerts.map((a) => [a.kind, a.entryKind, a.balance]);

describe.each(BACKENDS)("balance alerts around credits returned to an expired grant on %s", (backend) => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase(backend);
  });
  afterAll(() => database?.dispose());

  it("the audit's case, without a threshold: DEPLETED, RECOVERED (refund), DEPLETED (expiration), RECOVERED (grant)", async () => {
    const { db } = database;
    const ledger = createCoalescingChargeLedger(db);
    const sub = await fundedSubscription(database, "expired-refund-owner", {});
    await addGrant(db, sub, 1, { category: "PROMOTIONAL", expiresAt: new Date(Date.now() + EXPIRY_MS) });
    const debit = await holdCredits(ledger, sub, 1);
    const [posted] = await ledger.settle([{ kind: "post", subscriptionId: sub, entryId: debit, actorId: null, requestId: null }]);
    expect(posted.settled).toBe(true);
    await sleep(EXPIRY_MS + 200);

    const refund = await refundDebit(db, { entryId: debit, amount: 1, actorId: "admin", reason: "goodwill", requestId: "refund" });
    expect(refund).toMatchObject({ ok: true, entry: { kind: "REFUND", amount: 1, balanceAfter: 1 } });
    await addGrant(db, sub, 5);

    const alerts = await alertsOf(db, sub);
    expect(kinds(alerts)).toEqual([
      ["BALANCE_DEPLETED", "DEBIT", 0],
      ["BALANCE_RECOVERED", "REFUND", 1],
      ["BALANCE_DEPLETED", "EXPIRATION", 0],
      ["BALANCE_RECOVERED", "GRANT", 5],
    ]);
    // Stored in the order of the entries they come from.
    expect(alerts.map((a) => a.entrySeq)).toEqual([...alerts.map((a) => a.entrySeq)].sort((a, b) => a - b));
    expect(await alertedState(db, sub)).toBe(false);

    // Live events: each statement's item, in relay order, names a later entry than the one before
    // (a hub drops an item whose entry is older than what it pushed), and carries its crossing.
    const items = await outboxItems(db, sub);
    expect(items.map(([kind, balance, crossing]) => [kind, balance, crossing]).slice(-3)).toEqual([
      ["REFUND", 1, "BALANCE_RECOVERED"],
      ["EXPIRATION", 0, "BALANCE_DEPLETED"],
      ["GRANT", 5, "BALANCE_RECOVERED"],
    ]);
    const seqs = items.map((item) => item[3]);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(await auditLedgerAndGrants(db)).toMatchObject({ ok: true, mismatches: [] });
  });

  it("with a low-balance threshold: LOW_BALANCE and DEPLETED, RECOVERED (refund), LOW_BALANCE and DEPLETED (expiration), RECOVERED (grant)", async () => {
    const { db } = database;
    const ledger = createCoalescingChargeLedger(db);
    const sub = await fundedSubscription(database, "expired-refund-threshold", {});
    await writeLowBalanceThreshold(db, { subscriptionId: sub, creditType: "ai", lowBalance: 2 });
    await addGrant(db, sub, 2, { category: "PROMOTIONAL", expiresAt: new Date(Date.now() + EXPIRY_MS) });
    const debit = await holdCredits(ledger, sub, 2);
    await ledger.settle([{ kind: "post", subscriptionId: sub, entryId: debit, actorId: null, requestId: null }]);
    await sleep(EXPIRY_MS + 200);

    expect(await refundDebit(db, { entryId: debit, amount: undefined, actorId: "admin", reason: "goodwill", requestId: "refund" })).toMatchObject({ ok: true });
    await addGrant(db, sub, 5);

    expect(kinds(await alertsOf(db, sub))).toEqual([
      ["LOW_BALANCE", "DEBIT", 0],
      ["BALANCE_DEPLETED", "DEBIT", 0],
      ["BALANCE_RECOVERED", "REFUND", 2],
      ["LOW_BALANCE", "EXPIRATION", 0],
      ["BALANCE_DEPLETED", "EXPIRATION", 0],
      ["BALANCE_RECOVERED", "GRANT", 5],
    ]);
    expect(await alertedState(db, sub)).toBe(false);
    expect(await auditLedgerAndGrants(db)).toMatchObject({ ok: true, mismatches: [] });
  });

  it("a settlement's RELEASE into an expired grant (the charge path's statement): the same order, and `remaining` 0", async () => {
    const { db } = database;
    const ledger = createCoalescingChargeLedger(db);
    const sub = await fundedSubscription(database, "expired-release-owner", {});
    await addGrant(db, sub, 3, { category: "PROMOTIONAL", expiresAt: new Date(Date.now() + EXPIRY_MS) });
    const debit = await holdCredits(ledger, sub, 3);
    await sleep(EXPIRY_MS + 200);

    // The call cost nothing: its whole hold is released, into the grant that has expired.
    const [settled] = await ledger.settle([{ kind: "release", subscriptionId: sub, entryId: debit, amount: 3, actorId: null, requestId: "req" }]);
    expect(settled).toEqual({ settled: true, returned: 3, balanceAfter: 0 });
    await addGrant(db, sub, 5);

    const alerts = await alertsOf(db, sub);
    expect(kinds(alerts)).toEqual([
      ["BALANCE_DEPLETED", "DEBIT", 0],
      ["BALANCE_RECOVERED", "RELEASE", 3],
      ["BALANCE_DEPLETED", "EXPIRATION", 0],
      ["BALANCE_RECOVERED", "GRANT", 5],
    ]);
    expect(alerts.map((a) => a.entrySeq)).toEqual([...alerts.map((a) => a.entrySeq)].sort((a, b) => a - b));
    expect(await alertedState(db, sub)).toBe(false);
    expect(await auditLedgerAndGrants(db)).toMatchObject({ ok: true, mismatches: [] });
  });

  it("two releases into the expired grant in one settlement statement: the releases, then their EXPIRATIONs, each crossing once", async () => {
    const { db } = database;
    const ledger = createCoalescingChargeLedger(db);
    const sub = await fundedSubscription(database, "expired-release-batch", {});
    await addGrant(db, sub, 4, { category: "PROMOTIONAL", expiresAt: new Date(Date.now() + EXPIRY_MS) });
    const [first] = await ledger.hold([
      { subscriptionId: sub, creditType: "ai", amount: 2, operation: "Mutation.searchLeads", estimated: 2, actorId: "owner", adminOverride: false, requestId: "a", entryId: randomUUID(), authorize: false, actorIsAdmin: false },
    ]);
    const second = await holdCredits(ledger, sub, 2);
    if (!first.ok) throw new Error("hold refused");
    await sleep(EXPIRY_MS + 200);

    // One credit_settle statement for both calls, each releasing its whole hold into the expired grant.
    const outcomes = await settleHolds(db, [
      { kind: "release", subscriptionId: sub, entryId: first.entryId, amount: 2, actorId: null, requestId: "a" },
      { kind: "release", subscriptionId: sub, entryId: second, amount: 2, actorId: null, requestId: "b" },
    ]);
    expect(outcomes).toEqual([
      { settled: true, returned: 2, balanceAfter: 0 },
      { settled: true, returned: 2, balanceAfter: 0 },
    ]);
    const entries = await queryRows<{ kind: string; amount: number; balance_after: number }>(
      db,
      sql`select kind, amount, balance_after from credit_ledger where subscription_id = ${sub}::uuid and kind in ('RELEASE', 'EXPIRATION') order by seq`,
    );
    expect(entries).toEqual([
      { kind: "RELEASE", amount: 2, balance_after: 2 },
      { kind: "RELEASE", amount: 2, balance_after: 4 },
      { kind: "EXPIRATION", amount: -2, balance_after: 2 },
      { kind: "EXPIRATION", amount: -2, balance_after: 0 },
    ]);
    await addGrant(db, sub, 5);

    const alerts = await alertsOf(db, sub);
    expect(kinds(alerts)).toEqual([
      ["BALANCE_DEPLETED", "DEBIT", 0],
      ["BALANCE_RECOVERED", "RELEASE", 2],
      ["BALANCE_DEPLETED", "EXPIRATION", 0],
      ["BALANCE_RECOVERED", "GRANT", 5],
    ]);
    expect(alerts.map((a) => a.entrySeq)).toEqual([...alerts.map((a) => a.entrySeq)].sort((a, b) => a - b));
    expect(await alertedState(db, sub)).toBe(false);
    expect(await auditLedgerAndGrants(db)).toMatchObject({ ok: true, mismatches: [] });
  });
});
