/**
 * creditPreview's subscription read (one unnamed statement per batch calling credit_preview_snapshots,
 * answered as one JSON value) must give exactly what the ordinary reads give: the same subscription record, the same
 * balances in the same order, with dates to the millisecond; nothing for an id that does not exist.
 * And the reader that shares reads between concurrent previews must answer each caller with its own
 * subscription, see every change committed before the load, and use fewer reads than loads.
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../../src/db/database.js";
import { balancesOfSubscriptions } from "../../src/ledger/balances.js";
import { changeBalance } from "../../src/ledger/change-balance.js";
import { readSubscriptionSnapshots, SubscriptionSnapshotReader } from "../../src/credits/preview/subscription-snapshots.js";
import { setSubscriptionStatus, subscriptionsByIds } from "../../src/subscriptions/subscription-store.js";
import { billingSubscriptions } from "../../src/db/schema/subscriptions.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { fundedSubscription } from "../helpers/test-app.js";

const UNKNOWN = "00000000-0000-4000-8000-000000000000";

describe.each(BACKENDS)("preview's subscription snapshots on %s", (backend) => {
  let database: TestDatabase;
  let funded: string;
  let suspended: string;
  let bare: string;

  beforeAll(async () => {
    database = await createTestDatabase(backend);
    funded = await fundedSubscription(database, "snap-owner", { ai: 7, leads: 30 });
    suspended = await fundedSubscription(database, "snap-other", { skiptrace: 2 });
    await setSubscriptionStatus(database.db, suspended, "SUSPENDED", "card declined");
    // A subscription row with no balance rows at all (opened outside openSubscription).
    const [row] = await database.db.insert(billingSubscriptions).values({ ownerId: "snap-bare", plan: "free" }).returning();
    bare = row.id;
  });
  afterAll(async () => {
    await database?.dispose();
  });

  it("gives the same records as the ordinary reads, balances in credit-type order", async () => {
    const ids = [funded, suspended, bare];
    const found = await readSubscriptionSnapshots(database.db, [...ids, UNKNOWN]);
    expect([...found.keys()].sort()).toEqual([...ids].sort());

    const subscriptions = await subscriptionsByIds(database.db, ids);
    const balances = await balancesOfSubscriptions(database.db, ids);
    for (const subscription of subscriptions) {
      const snapshot = found.get(subscription.id)!;
      expect(snapshot.subscription).toEqual(subscription);
      expect(snapshot.subscription.createdAt).toBeInstanceOf(Date);
      expect(snapshot.balances).toEqual(balances.filter((b) => b.subscriptionId === subscription.id));
    }
    expect(found.get(suspended)!.subscription).toMatchObject({ status: "SUSPENDED", statusReason: "card declined" });
    expect(found.get(funded)!.balances.map((b) => [b.creditType, b.balance])).toEqual([
      ["ai", 7],
      ["leads", 30],
      ["skiptrace", 0],
    ]);
    expect(found.get(bare)!.balances).toEqual([]);
  });

  it("answers an empty map for ids that do not exist", async () => {
    expect((await readSubscriptionSnapshots(database.db, [UNKNOWN])).size).toBe(0);
  });

  it("leaves no prepared statement on its connection, so it works through a transaction-mode pooler", async () => {
    // One transaction is one server session, so the read and the look at what it left share it.
    const left = await database.db.transaction(async (tx) => {
      expect((await readSubscriptionSnapshots(tx, [funded, suspended])).size).toBe(2);
      return queryRows<{ name: string }>(tx, sql`select name from pg_prepared_statements`);
    });
    expect(left).toEqual([]);
  });

  it("shares reads between concurrent loads, answers each its own, and sees what was committed before", async () => {
    await changeBalance(database.db, {
      subscriptionId: funded,
      creditType: "leads",
      kind: "GRANT",
      delta: 5,
      actorId: "test",
      reason: "before the loads",
      requestId: null,
    });
    let reads = 0;
    const reader = new SubscriptionSnapshotReader(database.db, async (db, ids) => {
      reads++;
      return readSubscriptionSnapshots(db, ids);
    });
    const wanted = Array.from({ length: 30 }, (_, i) => [funded, suspended, UNKNOWN][i % 3]);
    const answers = await Promise.all(wanted.map((id) => reader.load(id)));

    answers.forEach((answer, i) => {
      if (wanted[i] === UNKNOWN) expect(answer).toBeUndefined();
      else expect(answer?.subscription.id).toBe(wanted[i]);
    });
    expect(answers[0]!.balances.find((b) => b.creditType === "leads")!.balance).toBe(35);
    expect(reads).toBeGreaterThan(0);
    expect(reads).toBeLessThan(wanted.length);
  });

  it("hands a failed read's error to every load that shared it, and reads again afterwards", async () => {
    let fail = true;
    const reader = new SubscriptionSnapshotReader(database.db, async (db, ids) => {
      if (fail) throw new Error("connection lost");
      return readSubscriptionSnapshots(db, ids);
    });
    const failed = await Promise.allSettled([reader.load(funded), reader.load(suspended)]);
    expect(failed.map((r) => r.status)).toEqual(["rejected", "rejected"]);
    fail = false;
    expect((await reader.load(funded))?.subscription.id).toBe(funded);
  });
});
