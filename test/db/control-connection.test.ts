/**
 * The control connection (src/db/connect.ts, DatabaseHandle.control): the instance lease and the
 * health ping have a one-connection pool of their own. They shared the request pool: with requests
 * holding every one of its connections (heavy reads, or just a busy instance), the renewal's checkout
 * timed out ("timeout exceeded when trying to connect", lease.renew_failed), the lease expired, and
 * any instance's recovery pass refunded the holds of calls still running on this live one; /health
 * answered 503 "database: down" for a busy but healthy instance. And every pg pool keeps its
 * connections under TCP keepalive, so a connection a silent partition dropped is found dead while idle.
 */
import type { ServerResponse } from "node:http";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { healthRoute } from "../../src/app/health.js";
import { connectDatabase } from "../../src/db/connect.js";
import type { Database } from "../../src/db/database.js";
import type { RouteRequest } from "../../src/http/http-server.js";
import { createCredits, type Credits } from "../../src/library/index.js";
import { createPostgresDatabase, type TestDatabase } from "../helpers/databases.js";
import { postgresAvailable } from "../helpers/services.js";

const POOL_SIZE = 2;
const TTL_MS = 1_500;

function poolOf(db: Database | undefined): pg.Pool {
  return (db as unknown as { $client: pg.Pool }).$client;
}

interface LeaseRow {
  id: string;
  expires_ms: number;
  live: boolean;
}

/** The lease rows, read on a connection of the test's own (the handle's pools are what is under test). */
async function leases(url: string): Promise<LeaseRow[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<LeaseRow>(
      "select id, (extract(epoch from expires_at) * 1000)::float8 as expires_ms, expires_at > now() as live from instance_leases order by expires_at desc",
    );
    return rows;
  } finally {
    await client.end();
  }
}

async function waitFor<T>(what: string, read: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Resolves to what ping() did within `ms`: "up", "down" (rejected) or "no answer". */
async function pingWithin(database: TestDatabase, ms: number): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<string>((resolve) => (timer = setTimeout(() => resolve("no answer"), ms)));
  try {
    return await Promise.race([database.ping().then(() => "up", (err: Error) => `down (${err.message})`), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** GET /health's status and body, answered by the route on a stand-in response. */
async function health(database: TestDatabase): Promise<{ status: number; body: Record<string, unknown> }> {
  let status = 0;
  let body = "";
  const res = {
    writeHead: (code: number) => void (status = code),
    end: (text: string) => void (body = text),
  } as unknown as ServerResponse;
  await healthRoute(database)({ req: {}, res, requestId: "control-connection-test" } as RouteRequest);
  return { status, body: JSON.parse(body) as Record<string, unknown> };
}

describe.skipIf(!postgresAvailable)("the control connection on PostgreSQL", () => {
  let database: TestDatabase;
  let credits: Credits<object> | undefined;

  beforeAll(async () => {
    database = await createPostgresDatabase(POOL_SIZE);
  });
  afterAll(async () => {
    await credits?.close();
    await database?.dispose();
  });

  it("renews the lease and answers /health while requests hold every connection of the pool", async () => {
    credits = await createCredits({
      database,
      creditTypes: ["calls"],
      caller: () => undefined,
      recovery: false,
      rateLimit: false,
      lease: { ttlMs: TTL_MS },
    });
    const taken = await waitFor("the lease to be taken", async () => (await leases(database.url!))[0]);

    // Every connection of the request pool, each in an open transaction, as long requests hold them.
    const requestPool = poolOf(database.db);
    const held = await Promise.all(Array.from({ length: POOL_SIZE }, () => requestPool.connect()));
    try {
      for (const client of held) await client.query("begin; select 1");
      expect(requestPool.totalCount).toBe(POOL_SIZE);
      expect(requestPool.idleCount).toBe(0);

      // Two TTLs: the lease, had it not been renewed, would have expired, and recovery would refund its holds.
      await new Promise((resolve) => setTimeout(resolve, 2 * TTL_MS));
      const [now] = await leases(database.url!);
      expect.soft(now.id, "the same lease, never lost and retaken").toBe(taken.id);
      expect.soft(now.live, "the lease is still live").toBe(true);
      expect.soft(now.expires_ms, "expires_at moved forward").toBeGreaterThan(taken.expires_ms + TTL_MS);

      expect.soft(await pingWithin(database, 2_000)).toBe("up");
      const answer = await health(database);
      expect.soft(answer.status).toBe(200);
      expect.soft(answer.body).toMatchObject({ status: "ok", database: "up", backend: "postgres" });
      // One connection more than the pool, whatever the load.
      expect(poolOf(database.control).totalCount).toBeLessThanOrEqual(1);
    } finally {
      for (const client of held) {
        await client.query("rollback").catch(() => undefined);
        client.release();
      }
    }
  }, 30_000);
});

describe.skipIf(!postgresAvailable)("pg pools of connectDatabase", () => {
  it("all keep their connections under TCP keepalive; the control pool has one connection and closes with the handle", async () => {
    // Every pool connectDatabase makes, the migrations' one too (closed before it returns).
    const made: pg.PoolConfig[] = [];
    const OriginalPool = pg.Pool;
    pg.Pool = class extends OriginalPool {
      constructor(config?: pg.PoolConfig) {
        made.push({ ...config });
        super(config);
      }
    } as typeof pg.Pool;
    let database: TestDatabase;
    try {
      database = await createPostgresDatabase(POOL_SIZE);
    } finally {
      pg.Pool = OriginalPool;
    }
    try {
      for (const config of made) {
        expect(config.keepAlive).toBe(true);
        expect(config.keepAliveInitialDelayMillis).toBeGreaterThan(0);
      }
      expect(made.length, "request, migrations and control pools").toBe(3);

      const request = poolOf(database.db);
      const control = poolOf(database.control);
      expect(control, "a pool of its own").not.toBe(request);
      expect(request.options).toMatchObject({ keepAlive: true, max: POOL_SIZE });
      expect(control.options).toMatchObject({ keepAlive: true, max: 1 });
      await database.ping();
      expect(control.totalCount, "ping() goes through the control pool").toBe(1);
    } finally {
      await database.dispose();
    }
    expect(poolOf(database.control).ended, "closed with the handle").toBe(true);
    expect(poolOf(database.db).ended).toBe(true);
  });

  it("PGlite has no control pool: its one connection serves all", async () => {
    const handle = await connectDatabase({ pgliteDir: "memory://" });
    try {
      expect(handle.control).toBeUndefined();
      await handle.ping();
    } finally {
      await handle.close();
    }
  });
});
