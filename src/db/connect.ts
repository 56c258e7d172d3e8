/**
 * Opens the configured database and brings its schema up to date: node-postgres when DATABASE_URL is
 * set, else embedded PGlite in PGLITE_DIR ("memory://" keeps nothing). Migrations from drizzle/ are
 * applied at every start, in one transaction under a transaction-scoped advisory lock, so instances
 * starting together do not race, also through a transaction-mode pooler; they are recorded in the
 * credits core's own table, drizzle.__graphql_credits_migrations (migrate-postgres.ts).
 */
import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import type { Logger } from "pino";
import * as schema from "./schema/index.js";
import type { Database, DatabaseHandle } from "./database.js";
import { applyMigrations, logAppliedMigrations } from "./migrate-postgres.js";
import { preparePgliteDirectory } from "./pglite-directory.js";
import { lockPgliteDirectory } from "./pglite-directory-lock.js";
import { listenForPoolErrors } from "./pool-error-listeners.js";

export const MIGRATIONS_FOLDER = fileURLToPath(new URL("../../drizzle", import.meta.url));

/**
 * Every pg pool's connections. TCP keepalive, so that a connection the network silently dropped
 * (a partition, a NAT or load balancer forgetting it) is found dead while idle, instead of only
 * when a statement sent on it never answers.
 */
const CONNECTION_SETTINGS = { connectionTimeoutMillis: 5_000, keepAlive: true, keepAliveInitialDelayMillis: 10_000 } as const;

/**
 * The control pool (DatabaseHandle.control): the instance lease's renewal and /health's ping, which
 * must not wait behind requests for a connection of the request pool. A busy pool then neither lets
 * the lease lapse (and recovery refund the holds of calls still running here) nor makes a busy
 * instance look down. One connection, kept open (no idle timeout: a database at max_connections
 * cannot then refuse the next renewal a connection), not keeping the process alive while idle. A
 * statement that gets no answer within query_timeout fails, and its connection is dropped, so the
 * next renewal retries on a fresh one well within the lease's TTL.
 */
const CONTROL_SETTINGS = {
  ...CONNECTION_SETTINGS,
  max: 1,
  idleTimeoutMillis: 0,
  allowExitOnIdle: true,
  query_timeout: 5_000,
} as const;

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

  const pool = new pg.Pool({ ...CONNECTION_SETTINGS, connectionString: url, max: options.poolSize ?? 10 });
  listenForPoolErrors(pool, options.logger);

  const db = drizzle(pool, { schema }) as unknown as Database;
  // Migrations run on a connection of their own, closed before the pool opens any: settings the
  // migrations put on the database (0009: jit = off) apply to new sessions only.
  const migrationPool = new pg.Pool({ ...CONNECTION_SETTINGS, connectionString: url, max: 1 });
  listenForPoolErrors(migrationPool, options.logger);
  try {
    logAppliedMigrations(options.logger, await applyMigrations(drizzle(migrationPool, { schema }) as unknown as Database, MIGRATIONS_FOLDER));
  } catch (err) {
    await pool.end();
    throw err;
  } finally {
    await migrationPool.end();
  }
  const controlPool = new pg.Pool({ ...CONTROL_SETTINGS, connectionString: url });
  listenForPoolErrors(controlPool, options.logger);
  return {
    db,
    control: drizzle(controlPool, { schema }) as unknown as Database,
    kind: "postgres",
    url,
    ping: async () => {
      await controlPool.query("select 1");
    },
    close: async () => {
      await Promise.all([pool.end(), controlPool.end()]);
    },
  };
}

async function connectPglite(options: ConnectOptions): Promise<DatabaseHandle> {
  const { PGlite } = await import("@electric-sql/pglite");
  const { drizzle } = await import("drizzle-orm/pglite");

  const dir = options.pgliteDir ?? "./.data/pglite";
  // PGlite takes a path, "file://<path>" or "memory://".
  const directory = dir.startsWith("memory://") ? undefined : dir.startsWith("file://") ? dir.slice("file://".length) : dir;
  let unlock = () => {};
  if (directory !== undefined) {
    // Not mkdirSync's recursive mode: it never returns under /proc (pglite-directory.ts).
    preparePgliteDirectory(directory);
    unlock = lockPgliteDirectory(directory);
  }
  let client: InstanceType<typeof PGlite>;
  try {
    client = new PGlite(dir);
    await client.waitReady;
  } catch (err) {
    unlock();
    throw err;
  }
  const db = drizzle(client, { schema });
  try {
    logAppliedMigrations(options.logger, await applyMigrations(db as unknown as Database, MIGRATIONS_FOLDER));
  } catch (err) {
    await client.close();
    unlock();
    throw err;
  }

  return {
    db: db as unknown as Database,
    kind: "pglite",
    listen: (channel, onPayload) => client.listen(channel, onPayload),
    ping: async () => {
      await db.execute(sql`select 1`);
    },
    close: async () => {
      try {
        await client.close();
      } finally {
        unlock();
      }
    },
  };
}
