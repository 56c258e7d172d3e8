/**
 * At most one USAGE_SPIKE per subscription per window, however many checks store one at once
 * (credit_alert_spike_once, drizzle/0014): on PostgreSQL through a pool, so the statements really run
 * side by side on separate connections and wait for each other's lock.
 */
import { randomUUID } from "node:crypto";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { fundedSubscription } from "../helpers/test-app.js";
import type { AlertRecord } from "../../src/observability/alerts/alert.js";
import { insertSpikeAlertOncePerWindow, listAlerts } from "../../src/observability/alerts/alert-store.js";

describe.each(BACKENDS)("one USAGE_SPIKE per window on %s", (backend) => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase(backend);
  });

  afterAll(async () => {
    await database?.close();
  });

  const spike = (subscriptionId: string, recentCredits: number) => ({
    id: randomUUID(),
    kind: "USAGE_SPIKE" as const,
    subscriptionId,
    message: `spike of ${recentCredits}`,
    details: { recentCredits },
  });
  const at = (ms: number) => ({ at: new Date(ms) });

  it("stores one of many raised at once, and a new one once the window has passed", async () => {
    const windowMs = 300_000;
    const now = Date.now();
    // The pool's connections open first, so the twenty statements of each round really run together.
    await Promise.all(Array.from({ length: 20 }, () => database.db.execute(sql`select 1`)));
    let subscriptionId = "";
    let stored: AlertRecord[] = [];
    for (let round = 0; round < 10; round++) {
      subscriptionId = await fundedSubscription(database, `spike-once-${round}`, { leads: 1 });
      const raised = await Promise.all(
        Array.from({ length: 20 }, (_, i) => insertSpikeAlertOncePerWindow(database.db, spike(subscriptionId, 200 + i), at(now + i), windowMs)),
      );
      stored = raised.filter((alert) => alert !== undefined);
      expect({ round, stored: stored.length }).toEqual({ round, stored: 1 });
    }
    expect(stored[0]).toMatchObject({ kind: "USAGE_SPIKE", subscriptionId, details: { recentCredits: expect.any(Number) } });
    expect(await listAlerts(database.db, { subscriptionId, limit: 10 })).toEqual(stored);

    // Another subscription's spike is its own.
    const other = await fundedSubscription(database, "spike-other", { leads: 1 });
    expect(await insertSpikeAlertOncePerWindow(database.db, spike(other, 150), at(now), windowMs)).toMatchObject({ subscriptionId: other });

    // A window later the same subscription may alert again.
    const later = now + windowMs + 1_000;
    const next = await insertSpikeAlertOncePerWindow(database.db, spike(subscriptionId, 300), at(later), windowMs);
    expect(next).toMatchObject({ subscriptionId, details: { recentCredits: 300 } });
    expect((await listAlerts(database.db, { subscriptionId, limit: 10 })).map((a) => a.details.recentCredits)).toEqual([300, stored[0].details.recentCredits]);
  });
});
