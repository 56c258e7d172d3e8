/**
 * What the live-balance ledger trigger (drizzle/0012_balance_change_payload.sql) writes to the
 * outbox, on PGlite and PostgreSQL: one item per balance a statement changed (its last entry and the
 * count of its entries), in as few rows as fit NOTIFY's 8000-byte limit, and nothing for a statement
 * that inserted nothing.
 */
import { randomUUID } from "node:crypto";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../../src/db/database.js";
import { holdGroups } from "../../src/ledger/hold.js";
import { parseBalanceNotification } from "../../src/live/balance-change.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { fundedSubscription } from "../helpers/test-app.js";

/** NOTIFY refuses a payload of 8000 bytes or more. */
const NOTIFY_LIMIT = 8000;

function hold(subscriptionId: string, amount = 1) {
  return {
    subscriptionId, creditType: "leads", amount, entryId: randomUUID(), operation: "Mutation.searchLeads", estimated: amount,
    actorId: "outbox-test", adminOverride: false, requestId: "outbox-test", authorize: false, actorIsAdmin: false,
  };
}

describe.each(BACKENDS)("the balance-change outbox on %s", (backend) => {
  let database: TestDatabase;
  const subscriptions: string[] = [];

  beforeAll(async () => {
    database = await createTestDatabase(backend);
    for (let i = 0; i < 60; i++) subscriptions.push(await fundedSubscription(database, `outbox-owner-${i}`, { leads: 100 }));
  }, 120_000);
  afterAll(async () => {
    await database?.dispose();
  });

  /** Empties the outbox and returns what the next statement adds to it. */
  async function outboxOf(statement: () => Promise<unknown>): Promise<string[]> {
    await database.db.execute(sql`delete from credit_balance_change_outbox`);
    await statement();
    const rows = await queryRows<{ payload: string }>(database.db, sql`select payload from credit_balance_change_outbox order by id`);
    return rows.map((r) => r.payload);
  }

  it("writes one row for a statement of a few balances, with each balance's last entry and its count", async () => {
    const [a, b] = subscriptions;
    const payloads = await outboxOf(() => holdGroups(database.db, [[hold(a, 2)], [hold(b, 1)], [hold(a, 3)]]));
    expect(payloads).toHaveLength(1);
    const changes = parseBalanceNotification(payloads[0]);
    const byId = new Map(changes.map((c) => [c.subscriptionId, c]));
    expect(changes).toHaveLength(2);
    expect(byId.get(a)).toMatchObject({ creditType: "leads", balance: 95, entries: 2, lastEntry: { kind: "DEBIT", amount: -3, balanceAfter: 95 } });
    expect(byId.get(b)).toMatchObject({ creditType: "leads", balance: 99, entries: 1, lastEntry: { kind: "DEBIT", amount: -1, balanceAfter: 99 } });
    expect(byId.get(a)!.lastEntry.seq).toBeGreaterThan(byId.get(b)!.lastEntry.seq);
  });

  it("splits a statement of many balances into rows NOTIFY accepts, every balance once", async () => {
    const payloads = await outboxOf(() => holdGroups(database.db, subscriptions.map((s) => [hold(s)])));
    expect(payloads.length).toBeGreaterThan(1);
    for (const payload of payloads) expect(Buffer.byteLength(payload)).toBeLessThan(NOTIFY_LIMIT);
    const ids = payloads.flatMap((p) => parseBalanceNotification(p).map((c) => c.subscriptionId));
    expect([...ids].sort()).toEqual([...subscriptions].sort());
  });

  it("writes nothing for a statement that inserted no entry", async () => {
    const payloads = await outboxOf(() =>
      database.db.execute(sql`insert into credit_ledger (subscription_id, credit_type, kind, amount, balance_after)
                              select subscription_id, credit_type, 'GRANT', 1, balance from credit_balances where false`),
    );
    expect(payloads).toEqual([]);
  });
});
