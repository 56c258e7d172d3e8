/**
 * The credits migrations keep their own bookkeeping table, so a host that runs drizzle migrations of
 * its own on the same database neither skips them nor makes the credits core skip its own (they
 * used to share drizzle's default drizzle.__drizzle_migrations, where each migrator applies only
 * what is newer than the newest row):
 * - the host's drizzle migrations first, then createCredits;
 * - createCredits first, then the host's migrations (dated before the credits ones);
 * - a database migrated the old way (credits rows in drizzle.__drizzle_migrations, beside a host's
 *   row, one with the hash of an older text of its file) is adopted: nothing runs again, what is
 *   newer is applied, and two instances upgrading it at once both start.
 * On PGlite and on PostgreSQL.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { sql } from "drizzle-orm";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import { migrate as migratePglite } from "drizzle-orm/pglite/migrator";
import { drizzle as drizzlePg } from "drizzle-orm/node-postgres";
import { migrate as migratePg } from "drizzle-orm/node-postgres/migrator";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import drizzleConfig from "../../drizzle.config.js";
import { connectDatabase, MIGRATIONS_FOLDER } from "../../src/db/connect.js";
import { queryRows, type Database } from "../../src/db/database.js";
import { createCredits, type DatabaseHandle } from "../../src/library/index.js";
import { createLogger } from "../../src/observability/logger.js";
import { adminQuery, BACKENDS, type BackendName } from "../helpers/databases.js";
import { TEST_DATABASE_URL } from "../helpers/services.js";
import { JOURNAL, migrationsUpTo } from "../helpers/migration-folders.js";

const CREDITS_TABLE = "drizzle.__graphql_credits_migrations";
const ALL = JOURNAL.entries.length;
/** 2026-01-01: before every credits migration. */
const BEFORE_CREDITS = Date.UTC(2026, 0, 1);

const dir = mkdtempSync(join(tmpdir(), "credits-migrations-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A host's drizzle migration folder: one migration, dated `when`, that creates app_users. */
function hostMigrations(when: number): string {
  const folder = join(dir, `app-${when}-${randomBytes(3).toString("hex")}`);
  mkdirSync(join(folder, "meta"), { recursive: true });
  const journal = { version: "7", dialect: "postgresql", entries: [{ idx: 0, version: "7", when, tag: "0000_app_users", breakpoints: true }] };
  writeFileSync(join(folder, "meta", "_journal.json"), JSON.stringify(journal));
  writeFileSync(join(folder, "0000_app_users.sql"), `CREATE TABLE "app_users" ("id" serial PRIMARY KEY, "name" text);`);
  return folder;
}



/** An empty database, opened by the host with drizzle, and its own drizzle migrator (the default table). */
interface HostDatabase {
  handle: DatabaseHandle;
  /** PostgreSQL: the database's URL. PGlite: its data directory. */
  location: string;
  hostMigrate(folder: string): Promise<void>;
  /** Closes the host's connection (PGlite: so that another process-local client may open the directory). */
  close(): Promise<void>;
  dispose(): Promise<void>;
}

async function emptyDatabase(backend: BackendName): Promise<HostDatabase> {
  if (backend === "pglite") {
    const location = join(dir, `pglite-${randomBytes(4).toString("hex")}`);
    const client = new PGlite(location);
    const db = drizzlePglite(client);
    let closed = false;
    const close = async () => {
      if (!closed) await client.close();
      closed = true;
    };
    return {
      handle: { db: db as unknown as Database, kind: "pglite", ping: async () => void (await client.query("select 1")), close },
      location,
      hostMigrate: (folder) => migratePglite(db, { migrationsFolder: folder }),
      close,
      dispose: close,
    };
  }
  const name = `gc_mig_${randomBytes(6).toString("hex")}`;
  await adminQuery(`create database ${name}`);
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  const pool = new pg.Pool({ connectionString: url.toString(), max: 2 });
  const db = drizzlePg(pool);
  let closed = false;
  const close = async () => {
    if (!closed) await pool.end();
    closed = true;
  };
  return {
    handle: { db: db as unknown as Database, kind: "postgres", url: url.toString(), ping: async () => void (await pool.query("select 1")), close },
    location: url.toString(),
    hostMigrate: (folder) => migratePg(db, { migrationsFolder: folder }),
    close,
    async dispose() {
      await close();
      await adminQuery(`drop database if exists ${name} with (force)`);
    },
  };
}

const exists = async (db: Database, relation: string) =>
  (await queryRows<{ r: string | null }>(db, sql`select to_regclass(${relation})::text as r`))[0].r !== null;
const createdAt = async (db: Database, table: string) =>
  (await queryRows<{ created_at: string }>(db, sql.raw(`select created_at::text from ${table} order by created_at, id`))).map((r) => Number(r.created_at));

/** createCredits on the database: a URL for PostgreSQL (opened by it), the host's handle for PGlite. */
async function credits(backend: BackendName, database: HostDatabase) {
  return createCredits({
    database: backend === "postgres" ? database.location : database.handle,
    creditTypes: ["calls"],
    caller: () => undefined,
    recovery: false,
    rateLimit: false,
    logger: createLogger("silent"),
  });
}

describe.each(BACKENDS)("the credits migrations' own bookkeeping on %s", (backend) => {
  it("applies every credits migration after the host's own drizzle migrations", async () => {
    const database = await emptyDatabase(backend);
    try {
      await database.hostMigrate(hostMigrations(Date.now()));
      const lib = await credits(backend, database);
      try {
        const sub = await lib.admin.createSubscription({ ownerId: "ann", initialCredits: { calls: 3 } });
        expect(await lib.admin.balances(sub.id)).toEqual({ calls: 3 });
      } finally {
        await lib.close();
      }
      expect(await createdAt(database.handle.db, CREDITS_TABLE)).toEqual(JOURNAL.entries.map((e) => e.when));
      // The host's bookkeeping holds its own migration only.
      expect(await createdAt(database.handle.db, "drizzle.__drizzle_migrations")).toHaveLength(1);
      expect(await exists(database.handle.db, "app_users")).toBe(true);
    } finally {
      await database.dispose();
    }
  }, 120_000);

  it("lets the host's drizzle migrations run after the credits ones, even dated before them", async () => {
    const database = await emptyDatabase(backend);
    try {
      const lib = await credits(backend, database);
      await lib.close();
      await database.hostMigrate(hostMigrations(BEFORE_CREDITS));
      expect(await exists(database.handle.db, "app_users")).toBe(true);
      // And the credits core still finds itself up to date.
      const again = await credits(backend, database);
      await again.close();
      expect(await createdAt(database.handle.db, CREDITS_TABLE)).toHaveLength(ALL);
    } finally {
      await database.dispose();
    }
  }, 120_000);

  it("adopts a database migrated the old way (drizzle.__drizzle_migrations): nothing runs twice, the newer ones run", async () => {
    const database = await emptyDatabase(backend);
    const upTo = ALL - 3;
    try {
      // What older versions did: the credits migrations (here the first upTo of them) in drizzle's table …
      await database.hostMigrate(migrationsUpTo(dir, upTo));
      // … beside a host's migration, and one recorded with the hash of an older text of its file.
      await database.handle.db.execute(sql`insert into drizzle.__drizzle_migrations (hash, created_at) values ('host', ${BEFORE_CREDITS})`);
      await database.handle.db.execute(sql`update drizzle.__drizzle_migrations set hash = 'older text' where created_at = ${JOURNAL.entries[1].when}`);
      const [{ id: sub }] = await queryRows<{ id: string }>(
        database.handle.db,
        sql`insert into billing_subscriptions (owner_id, plan) values ('old', 'basic') returning id`,
      );
      const before = await createdAt(database.handle.db, "drizzle.__drizzle_migrations");
      await database.close();

      // The server's start (connectDatabase), twice at once on PostgreSQL: two instances upgrading together.
      const starts = backend === "postgres" ? 2 : 1;
      const opened = await Promise.all(
        Array.from({ length: starts }, () => connectDatabase(backend === "postgres" ? { databaseUrl: database.location, poolSize: 2 } : { pgliteDir: database.location })),
      );
      try {
        const db = opened[0].db;
        expect(await createdAt(db, CREDITS_TABLE)).toEqual(JOURNAL.entries.map((e) => e.when));
        const adopted = await queryRows<{ hash: string }>(db, sql.raw(`select hash from ${CREDITS_TABLE} order by created_at limit 2`));
        expect(adopted[1].hash).toBe("older text");
        // The old table is left as it was (an older version rolled back to still finds itself up to date).
        expect(await createdAt(db, "drizzle.__drizzle_migrations")).toEqual(before);
        expect(await queryRows(db, sql`select owner_id from billing_subscriptions where id = ${sub}::uuid`)).toEqual([{ owner_id: "old" }]);
      } finally {
        for (const handle of opened) await handle.close();
      }
      // Started again: up to date, nothing added.
      const again = await connectDatabase(backend === "postgres" ? { databaseUrl: database.location, poolSize: 2 } : { pgliteDir: database.location });
      try {
        expect(await createdAt(again.db, CREDITS_TABLE)).toHaveLength(ALL);
      } finally {
        await again.close();
      }
    } finally {
      await database.dispose();
    }
  }, 180_000);
});

describe("drizzle-kit", () => {
  it("records migrations it applies in the credits' own table (drizzle.config.ts)", () => {
    expect(drizzleConfig).toMatchObject({ migrations: { schema: "drizzle", table: "__graphql_credits_migrations" } });
  });
});
