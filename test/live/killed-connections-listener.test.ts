/**
 * The live-balance LISTEN session and a killed backend, in process: its backend (and every other of
 * the database) is terminated again and again, at random moments of the session's life: while in
 * use, while a reconnect is connecting or sending LISTEN, between a failure and its retry. Nothing
 * escapes as an uncaught exception (a pg Client's 'error' with no listener exits a server), each
 * lost session is logged once at warn (a killed backend makes its client emit 'error' twice: 57P01,
 * then "Connection terminated unexpectedly"), and the listener comes back by itself and hears
 * notifications again.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { sql } from "drizzle-orm";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPostgresDatabase, type TestDatabase } from "../helpers/databases.js";
import { captureLogLines } from "../helpers/log-lines.js";
import { postgresAvailable, TEST_DATABASE_URL } from "../helpers/services.js";
import { createPostgresListener } from "../../src/live/notification-listener.js";
import { createLogger } from "../../src/observability/logger.js";

const CHANNEL = "killed_connections_test";
const PAUSES_MS = [0, 3, 10, 25, 60, 150];

describe.skipIf(!postgresAvailable)("the notification session's backend terminated again and again (PostgreSQL)", () => {
  let database: TestDatabase;
  let admin: pg.Client;
  const uncaught: unknown[] = [];
  const onUncaught = (err: unknown) => uncaught.push(err);

  beforeAll(async () => {
    database = await createPostgresDatabase(2);
    admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await admin.connect();
    process.on("uncaughtException", onUncaught);
  });
  afterAll(async () => {
    process.off("uncaughtException", onUncaught);
    await admin?.end();
    await database?.dispose();
  });

  it("survives, logs each lost session once, and listens again", async () => {
    const dbName = new URL(database.url!).pathname.slice(1);
    const logs = captureLogLines();
    const heard: string[] = [];
    const connected: boolean[] = [];
    let disconnected = 0;
    const listener = createPostgresListener(
      { url: database.url!, channel: CHANNEL, logger: createLogger("warn", logs.destination), backoff: { baseMs: 5, maxMs: 40 } },
      { notification: (payload) => heard.push(payload), connected: (afterLoss) => connected.push(afterLoss), disconnected: () => disconnected++ },
    );
    try {
      await listener.start();
      expect(connected).toEqual([false]);

      for (let round = 0; round < 40; round++) {
        await admin.query("select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()", [dbName]);
        await sleep(PAUSES_MS[round % PAUSES_MS.length]);
      }

      // Back by itself: a notification sent now is heard (sent again until it is, while it reconnects).
      const deadline = Date.now() + 15_000;
      for (let n = 0; !heard.includes(`after ${n - 1}`); n++) {
        if (Date.now() > deadline) throw new Error(`not listening again: ${JSON.stringify({ connected, disconnected, logs: logs.lines })}`);
        await database.db.execute(sql`select pg_notify(${CHANNEL}, ${`after ${n}`})`).catch(() => undefined);
        await sleep(100);
      }
    } finally {
      await listener.close();
    }

    expect(uncaught).toEqual([]);
    const facts = JSON.stringify({ connected, disconnected, events: logs.lines.map((line) => `${line.event}: ${line.err?.message}`) });
    expect(disconnected, facts).toBeGreaterThan(0);
    expect(connected.filter((afterLoss) => afterLoss).length, facts).toBe(disconnected);
    // Once per lost session, at warn.
    const lost = logs.lines.filter((line) => line.event === "live.listen_lost");
    expect(lost.length, facts).toBe(disconnected);
    for (const line of lost) expect(line.level).toBe(40);
  });
});
