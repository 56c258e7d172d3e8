/**
 * An alert raised while the database is away is stored once it is back: logged at once, stored again
 * after a wait, under the id it was raised with, and never twice, then posted as stored. Found by an
 * outside audit: a FAILED_TRANSACTION alert raised during an outage was logged with stored=false and
 * never reached creditAlerts; a second one found its webhook post's createdAt a few milliseconds off
 * the stored alert's (the post carried this instance's time, the row the database's).
 */
import { randomUUID } from "node:crypto";
import pino from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { fundedSubscription } from "../helpers/test-app.js";
import type { Database } from "../../src/db/database.js";
import type { AlertRecord } from "../../src/observability/alerts/alert.js";
import { createLogger } from "../../src/observability/logger.js";
import { AlertService } from "../../src/observability/alerts/alert-service.js";
import { insertAlert, listAlerts } from "../../src/observability/alerts/alert-store.js";
import { DATABASE_NOW } from "../../src/observability/alerts/alert-time.js";
import { WebhookNotifier } from "../../src/observability/alerts/webhook-notifier.js";
import { systemClock } from "../../src/observability/clock.js";
import { startWebhookReceiver, type ReceivedPost } from "../helpers/webhook-receiver.js";
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

/**
 * The database, but its first statement is slow (`delayMs`) and its answer is lost after it ran and
 * committed: the retry finds the row that first attempt wrote, stamped `delayMs` after it was sent.
 */
function answerLostAfter(db: Database, delayMs: number): Database {
  let first = true;
  return new Proxy(db, {
    get(target, property, receiver) {
      if (property !== "execute") return Reflect.get(target, property, receiver);
      return async (...args: unknown[]) => {
        const execute = () => (target.execute as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        if (!first) return execute();
        first = false;
        await new Promise((resolve) => setTimeout(resolve, delayMs));
        await execute();
        throw Object.assign(new Error("terminating connection due to administrator command"), { code: "57P01" });
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

  afterEach(() => {
    vi.useRealTimers();
  });

  /** Raises one alert on the system clock (times on the database's now()), posting to a receiver; resolves to what was stored and what was posted. */
  async function raiseAndPost(db: Database, ownerId: string) {
    const subscriptionId = await fundedSubscription(database, ownerId, { leads: 1 });
    const receiver = await startWebhookReceiver("whsec");
    const webhook = new WebhookNotifier({ url: receiver.url, secret: "whsec", logger: pino({ level: "silent" }) });
    const alerts = new AlertService({ db, logger: pino({ level: "silent" }), clock: systemClock, webhook });
    // jsonb keeps its keys in its own order (shorter first), not in the order they were written.
    alerts.raise({ kind: "FAILED_TRANSACTION", subscriptionId, message: "settle failed", details: { requestId: "r-1", stage: "settle" } });
    const [stored] = await eventually(() => listAlerts(database.db, { subscriptionId, limit: 10 }), (rows) => rows.length > 0, 10_000);
    await eventually(async () => receiver.posts.length, (n) => n > 0, 5_000);
    await alerts.close();
    await receiver.close();
    return { stored, posts: receiver.posts };
  }

  function expectPostedAsStored(stored: AlertRecord | undefined, posts: ReceivedPost[]): void {
    expect(stored).toBeDefined();
    expect(posts).toHaveLength(1);
    expect(posts[0].signatureValid).toBe(true);
    const { seq: _seq, createdAt, ...fields } = stored!;
    expect(posts[0].body).toEqual({ ...fields, createdAt: createdAt.toISOString() });
    expect(JSON.stringify(posts[0].body.details)).toBe(JSON.stringify(stored!.details));
  }

  it("are posted as stored when the first insert committed but its answer was lost", async () => {
    // The row is stamped 150 ms after the alert was raised; the instance's time of it is the raise.
    const { stored, posts } = await raiseAndPost(answerLostAfter(database.db, 150), "alert-retry-post-lost");
    expectPostedAsStored(stored, posts);
  });

  it("are posted as stored, never with the instance's time, when the database refused them at first", async () => {
    // This instance's clock 90 s ahead of PostgreSQL's (an outside audit ran one so). PGlite runs in
    // this process and reads the same clock, so there the two differ only by how long the alert waited.
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() + 90_000, shouldAdvanceTime: true });
    const { stored, posts } = await raiseAndPost(unavailableFor(database.db, 1), "alert-retry-post-skew");
    expectPostedAsStored(stored, posts);
    if (backend === "postgres") expect(Math.abs(stored!.createdAt.getTime() - (Date.now() - 90_000))).toBeLessThan(30_000);
  });

  it("are posted, with the instance's time, when the server shuts down before they could be stored", async () => {
    const receiver = await startWebhookReceiver("whsec");
    const webhook = new WebhookNotifier({ url: receiver.url, secret: "whsec", logger: pino({ level: "silent" }) });
    const alerts = new AlertService({ db: unavailableFor(database.db, 100), logger: pino({ level: "silent" }), clock: new FakeClock(), webhook });
    alerts.raise({ kind: "FAILED_TRANSACTION", subscriptionId: null, message: "refund failed", details: { stage: "refund" } });
    await alerts.flush();
    expect(alerts.waitingToBeStored).toBe(1);
    await alerts.close(5_000);
    await receiver.close();
    expect(receiver.posts.map((p) => p.body)).toMatchObject([{ kind: "FAILED_TRANSACTION", subscriptionId: null, message: "refund failed", details: { stage: "refund" } }]);
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
