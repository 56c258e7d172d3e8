/**
 * An alert raised while the database is away is stored once it is back: logged and posted at once,
 * stored again after a wait, under the id it was raised with, and never twice. Found by an outside
 * audit: a FAILED_TRANSACTION alert raised during an outage was logged with stored=false and never
 * reached creditAlerts.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { fundedSubscription } from "../helpers/test-app.js";
import type { Database } from "../../src/db/database.js";
import { createLogger } from "../../src/observability/logger.js";
import { AlertService } from "../../src/observability/alerts/alert-service.js";
import { insertAlert, listAlerts } from "../../src/observability/alerts/alert-store.js";
import { DATABASE_NOW } from "../../src/observability/alerts/alert-time.js";
import { FakeClock } from "../helpers/observability-clock.js";
import { captureLogLines } from "../helpers/log-lines.js";

function capturingLogger() {
  const { lines, destination } = captureLogLines();
  return { logger: createLogger("info", destination), lines };
}

/** The database, but its first `failures` statements fail as a terminated connection does. */
function unavailableFor(db: Database, failures: number): Database {
  let left = failures;
  return new Proxy(db, {
    get(target, property, receiver) {
      if (property !== "execute") return Reflect.get(target, property, receiver);
      return (...args: unknown[]) => {
        if (left-- > 0) return Promise.reject(Object.assign(new Error("terminating connection due to administrator command"), { code: "57P01" }));
        return (target.execute as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs: number): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > until) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe.each(BACKENDS)("alerts raised while the database is away, on %s", (backend) => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase(backend);
  });

  afterAll(async () => {
    await database?.close();
  });

  it("are logged at once and stored once the database answers again, once", async () => {
    const subscriptionId = await fundedSubscription(database, "alert-retry-owner", { leads: 1 });
    const { logger, lines } = capturingLogger();
    const alerts = new AlertService({ db: unavailableFor(database.db, 2), logger, clock: new FakeClock() });
    alerts.raise({ kind: "FAILED_TRANSACTION", subscriptionId, message: "settle failed", details: { stage: "settle" } });
    await alerts.flush();

    const announced = lines.find((l) => l.event === "credits.alert");
    expect(announced).toMatchObject({ kind: "FAILED_TRANSACTION", stored: false });
    expect(alerts.waitingToBeStored).toBe(1);

    // The first retry (after 1 s) fails too; the second (2 s later) stores it.
    const stored = await eventually(() => listAlerts(database.db, { subscriptionId, limit: 10 }), (rows) => rows.length > 0, 10_000);
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({ id: announced!.alertId, kind: "FAILED_TRANSACTION", message: "settle failed", details: { stage: "settle" } });
    await alerts.flush();
    expect(lines.find((l) => l.event === "alerts.stored_late")).toMatchObject({ alertId: announced!.alertId, attempts: 3 });
    expect(alerts.waitingToBeStored).toBe(0);
    await alerts.close();
  });

  it("are given up, and said so, when the server shuts down first", async () => {
    const { logger, lines } = capturingLogger();
    const alerts = new AlertService({ db: unavailableFor(database.db, 100), logger, clock: new FakeClock() });
    alerts.raise({ kind: "FAILED_TRANSACTION", subscriptionId: null, message: "refund failed", details: {} });
    await alerts.flush();
    expect(alerts.waitingToBeStored).toBe(1);
    await alerts.close();
    expect(alerts.waitingToBeStored).toBe(0);
    expect(lines.find((l) => l.event === "alerts.store_abandoned")).toBeDefined();
  });

  it("store one row when the insert is sent twice (a retry after a commit whose answer was lost)", async () => {
    const subscriptionId = await fundedSubscription(database, "alert-retry-twice", { leads: 1 });
    const alert = { id: randomUUID(), kind: "ESTIMATE_MISMATCH" as const, subscriptionId, message: "m", details: { actual: 9 } };
    const first = await insertAlert(database.db, alert, DATABASE_NOW);
    const second = await insertAlert(database.db, alert, DATABASE_NOW);
    expect(second).toEqual(first);
    expect(await listAlerts(database.db, { subscriptionId, limit: 10 })).toEqual([first]);
  });
});
