/**
 * The pool's clients and a killed backend, in process (test/db/killed-connections.test.ts is the
 * whole-server storm). A pg Client whose connection dies emits 'error'; pg-pool listens only while a
 * client is idle in the pool, so a client checked out across awaits (every drizzle transaction) that
 * lost its backend threw "Unhandled 'error' event", which exits a server. Here: the transaction fails
 * with a lost-connection error its caller can handle, nothing escapes as an uncaught exception, the
 * loss is logged once at warn, and the pool serves the next statement on a fresh connection. The
 * same for a pool a library host opened itself and gave createCredits.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { sql } from "drizzle-orm";
import pg from "pg";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createPostgresDatabase, type TestDatabase } from "../helpers/databases.js";
import { captureLogLines, type CapturedLogLines } from "../helpers/log-lines.js";
import { postgresAvailable, TEST_DATABASE_URL } from "../helpers/services.js";
import { connectDatabase } from "../../src/db/connect.js";
import { queryRows, type DatabaseHandle } from "../../src/db/database.js";
import { lostConnection } from "../../src/db/errors.js";
import { createLogger } from "../../src/observability/logger.js";
import { drizzle } from "drizzle-orm/node-postgres";
import { createCredits } from "../../src/library/index.js";

describe.skipIf(!postgresAvailable)("pool clients whose backend is terminated (PostgreSQL)", () => {
  let database: TestDatabase;
  let admin: pg.Client;
  let handle: DatabaseHandle;
  let logs: CapturedLogLines;
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
  beforeEach(async () => {
    uncaught.length = 0;
    logs = captureLogLines();
    handle = await connectDatabase({ databaseUrl: database.url!, poolSize: 2, logger: createLogger("warn", logs.destination) });
  });
  afterEach(async () => {
    // pool.end() waits for every checked-out client: one never given back would hold it for good.
    await Promise.race([handle.close(), sleep(5_000)]);
  });

  const terminate = (pid: number) => admin.query("select pg_terminate_backend($1)", [pid]);
  const lostLines = () => logs.lines.filter((line) => line.msg === "database connection lost");

  it("a transaction's client killed between two statements: the transaction fails, the process does not", async () => {
    const failure = await handle.db
      .transaction(async (tx) => {
        const [{ pid }] = await queryRows<{ pid: number }>(tx, sql`select pg_backend_pid() as pid`);
        await terminate(pid);
        // Checked out and idle: the backend's 57P01, then the closed socket, reach the client now.
        await sleep(200);
        await tx.execute(sql`select 1`);
      })
      .then(
        () => undefined,
        (err: unknown) => err,
      );

    expect(failure, String(failure)).toBeInstanceOf(Error);
    expect(lostConnection(failure), String(failure)).toBe(true);
    expect(uncaught).toEqual([]);
    expect(lostLines()).toHaveLength(1);
    expect(lostLines()[0]).toMatchObject({ level: 40, event: "db.connection_lost", err: { message: "terminating connection due to administrator command" } });
    // The broken client was dropped, not handed out again.
    await handle.ping();
    expect(await queryRows<{ one: number }>(handle.db, sql`select 1 as one`)).toEqual([{ one: 1 }]);
  });

  it("a transaction's client killed during a statement: the statement fails, the process does not", async () => {
    const failure = await handle.db
      .transaction(async (tx) => {
        const [{ pid }] = await queryRows<{ pid: number }>(tx, sql`select pg_backend_pid() as pid`);
        await Promise.all([tx.execute(sql`select pg_sleep(5)`), sleep(100).then(() => terminate(pid))]);
      })
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    // The socket's close arrives after the statement's error and the rollback's attempt.
    await sleep(200);

    expect(lostConnection(failure), String(failure)).toBe(true);
    expect(uncaught).toEqual([]);
    expect(lostLines()).toHaveLength(1);
    await handle.ping();
  });

  it("a checked-out client killed and never released (drizzle's transaction() when BEGIN fails) goes back to the pool", async () => {
    const pool = (handle.db as unknown as { $client: pg.Pool }).$client;
    // Both of the pool's clients, held as drizzle holds a transaction's client whose BEGIN failed: never released.
    const held = await Promise.all([pool.connect(), pool.connect()]);
    for (const client of held) await terminate((await client.query<{ pid: number }>("select pg_backend_pid() as pid")).rows[0].pid);
    await sleep(200);

    expect(uncaught).toEqual([]);
    expect(lostLines()).toHaveLength(2);
    // The pool has room again (else: 'timeout exceeded when trying to connect' after 5 s, for good).
    expect(pool.totalCount).toBe(0);
    await handle.ping();
    // The holders' own release() later does nothing (pg-pool throws on a second release).
    for (const client of held) client.release();
    await handle.ping();
  });

  // Already so before: pg-pool listens on idle clients and re-emits their 'error' on the pool.
  it("idle clients killed: logged once each, replaced", async () => {
    await Promise.all([handle.db.execute(sql`select pg_sleep(0.05)`), handle.db.execute(sql`select pg_sleep(0.05)`)]);
    const killed = await admin.query("select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()", [
      new URL(database.url!).pathname.slice(1),
    ]);
    await sleep(200);

    expect(uncaught).toEqual([]);
    // The test database's own handle has connections too: only this pool's two are logged here.
    expect(killed.rowCount).toBeGreaterThanOrEqual(2);
    expect(lostLines()).toHaveLength(2);
    await handle.ping();
  });

  it("a pool the library's host opened and gave createCredits: a transaction's client killed, the host's process does not die", async () => {
    const hostPool = new pg.Pool({ connectionString: database.url!, max: 2 });
    const hostHandle: DatabaseHandle = {
      db: drizzle(hostPool) as unknown as DatabaseHandle["db"],
      kind: "postgres",
      url: database.url!,
      ping: async () => {
        await hostPool.query("select 1");
      },
      close: () => hostPool.end(),
    };
    const credits = await createCredits({
      database: hostHandle,
      creditTypes: ["calls"],
      caller: () => undefined,
      recovery: false,
      rateLimit: false,
      logger: createLogger("warn", logs.destination),
    });
    try {
      const failure = await hostHandle.db
        .transaction(async (tx) => {
          const [{ pid }] = await queryRows<{ pid: number }>(tx, sql`select pg_backend_pid() as pid`);
          await terminate(pid);
          await sleep(200);
          await tx.execute(sql`select 1`);
        })
        .then(
          () => undefined,
          (err: unknown) => err,
        );
      expect(lostConnection(failure), String(failure)).toBe(true);
      expect(uncaught).toEqual([]);
      expect(lostLines()).toHaveLength(1);
      await hostHandle.ping();
    } finally {
      await credits.close();
      await Promise.race([hostPool.end(), sleep(5_000)]);
    }
  });
});
