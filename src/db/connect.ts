/**
 * Opens the configured database and brings its schema up to date: node-postgres when DATABASE_URL is
 * set, else embedded PGlite in PGLITE_DIR ("memory://" keeps nothing). Migrations from drizzle/ are
 * applied at every start, in one transaction under a transaction-scoped advisory lock, so instances
 * starting together do not race, also through a transaction-mode pooler; they are recorded in the
 * credits core's own table, drizzle.__graphql_credits_migrations (migrate-postgres.ts).
 */
import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import type { Pool, PoolClient } from "pg";
import type { Logger } from "pino";
import * as schema from "./schema/index.js";
import type { Database, DatabaseHandle } from "./database.js";
import { applyMigrations } from "./migrate-postgres.js";

export const MIGRATIONS_FOLDER = fileURLToPath(new URL("../../drizzle", import.meta.url));

export interface ConnectOptions {
  databaseUrl?: string;
  poolSize?: number;
  pgliteDir?: string;
  logger?: Logger;
}

export async function connectDatabase(options: ConnectOptions): Promise<DatabaseHandle> {
  return options.databaseUrl ? connectPostgres(options.databaseUrl, options) : connectPglite(options);
}

async function connectPostgres(url: string, options: ConnectOptions): Promise<DatabaseHandle> {
  const { default: pg } = await import("pg");
  const { drizzle } = await import("drizzle-orm/node-postgres");

  const pool = new pg.Pool({ connectionString: url, max: options.poolSize ?? 10, connectionTimeoutMillis: 5_000 });
  keepErrorListeners(pool, options.logger);

  const db = drizzle(pool, { schema }) as unknown as Database;
  // Migrations run on a connection of their own, closed before the pool opens any: settings the
  // migrations put on the database (0009: jit = off) apply to new sessions only.
  const migrationPool = new pg.Pool({ connectionString: url, max: 1, connectionTimeoutMillis: 5_000 });
  keepErrorListeners(migrationPool, options.logger);
  try {
    await applyMigrations(drizzle(migrationPool, { schema }) as unknown as Database, MIGRATIONS_FOLDER);
  } catch (err) {
    await pool.end();
    throw err;
  } finally {
    await migrationPool.end();
  }
  return {
    db,
    kind: "postgres",
    url,
    ping: async () => {
      await pool.query("select 1");
    },
    close: () => pool.end(),
  };
}

/**
 * Gives every client the pool opens an 'error' listener for its whole life. A client whose connection
 * dies (pg_terminate_backend, a server restart, a pooler dropping it) emits 'error' (57P01 when no
 * statement is running, then "Connection terminated unexpectedly" when the socket closes), and Node
 * exits on an 'error' event nobody listens to. pg-pool listens only while a client is idle in the
 * pool: from pool.connect() to release(), as in every drizzle transaction (checked out across the
 * awaits between its statements), the client had no listener, and one killed backend crashed the
 * process. The statement that was running fails on its own (a lost connection, retried or refunded
 * by its caller). Logged once per client, at warn.
 *
 * A checked-out client whose connection died is also given back at once, as broken (the pool drops
 * it and opens a fresh one when needed), and its holder's later release() does nothing: drizzle's
 * transaction() releases its client only after BEGIN succeeded, so a BEGIN cut off by the kill kept
 * the client out of the pool for good, and after DATABASE_POOL_SIZE such kills every statement of
 * the instance waited for a client that never came back ("timeout exceeded when trying to connect",
 * /health 503 for good).
 */
function keepErrorListeners(pool: Pool, logger: Logger | undefined): void {
  const checkedOut = new WeakSet<PoolClient>();
  pool.on("acquire", (client) => checkedOut.add(client));
  pool.on("release", (_err, client) => checkedOut.delete(client));
  pool.on("connect", (client) => {
    let logged = false;
    client.on("error", (err) => {
      if (!logged) {
        logged = true;
        logger?.warn({ event: "db.connection_lost", err: { message: err.message } }, "database connection lost");
      }
      if (checkedOut.has(client)) {
        client.release(err);
        client.release = () => undefined;
      }
    });
  });
  // pg-pool also re-emits an idle client's 'error' on the pool, and drops that client: it must be
  // listened to (or the process exits), and the client's own listener above has logged it.
  pool.on("error", () => undefined);
}

async function connectPglite(options: ConnectOptions): Promise<DatabaseHandle> {
  const { PGlite } = await import("@electric-sql/pglite");
  const { drizzle } = await import("drizzle-orm/pglite");

  const dir = options.pgliteDir ?? "./.data/pglite";
  // PGlite takes a path, "file://<path>" or "memory://".
  if (!dir.startsWith("memory://")) mkdirSync(dir.startsWith("file://") ? dir.slice("file://".length) : dir, { recursive: true });
  const client = new PGlite(dir);
  await client.waitReady;
  const db = drizzle(client, { schema });
  try {
    await applyMigrations(db as unknown as Database, MIGRATIONS_FOLDER);
  } catch (err) {
    await client.close();
    throw err;
  }

  return {
    db: db as unknown as Database,
    kind: "pglite",
    listen: (channel, onPayload) => client.listen(channel, onPayload),
    ping: async () => {
      await db.execute(sql`select 1`);
    },
    close: () => client.close(),
  };
}
