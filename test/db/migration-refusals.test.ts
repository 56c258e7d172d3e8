/**
 * The migrations refuse a database they must not migrate nor serve on, applying nothing, instead of
 * applying only what is newer than the newest recorded row (drizzle's rule), which an outside audit
 * found let `npm start` serve
 * - on a database a newer release had migrated (a downgrade onto a schema it does not know), and
 * - with such a newer row present, on a half-migrated one: a migration of this release that was not
 *   recorded was skipped, with only a warning advising migrateCredits;
 * and log nothing of what was applied. Here:
 * - a newer release's row is refused (also with one of ours unrecorded), naming how many and when;
 * - one of ours missing before a later recorded one (a gap) is refused, naming it;
 * - otherwise the trailing ones are applied and their tags returned (for the start's log line);
 * - a host's own rows in drizzle's shared table, even dated later, are not a newer release's;
 * - migrationState (createCredits with `migrate: false`) reports the same refusals;
 * - the start (connectDatabase, as `npm start` opens the database) and createCredits on an open handle refuse.
 * On PGlite and on PostgreSQL.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { sql } from "drizzle-orm";
import { drizzle as drizzlePg } from "drizzle-orm/node-postgres";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { databaseStartFailure } from "../../src/config/database-failure.js";
import { connectDatabase, MIGRATIONS_FOLDER } from "../../src/db/connect.js";
import { queryRows, type Database, type DatabaseHandle } from "../../src/db/database.js";
import { applyMigrations, migrationState } from "../../src/db/migrate-postgres.js";
import { createCredits } from "../../src/library/index.js";
import { createLogger } from "../../src/observability/logger.js";
import { adminQuery, BACKENDS, unmigratedPgliteHandle, type BackendName } from "../helpers/databases.js";
import { TEST_DATABASE_URL } from "../helpers/services.js";
import { JOURNAL, migrationsUpTo } from "../helpers/migration-folders.js";

const CREDITS_TABLE = "drizzle.__graphql_credits_migrations";
const ALL = JOURNAL.entries.length;
const NEWEST = JOURNAL.entries[ALL - 1];
/** A migration of a newer release: 2030-03-17T17:46:39.999Z, after every one of ours. */
const FUTURE = 1_899_999_999_999;
const NEWER_RELEASE =
  /the database was migrated by a newer release of graphql-credits \(1 migration this release does not know, recorded for 2030-03-17T17:46:39\.999Z\): run that release or a later one; downgrades are not supported/;

const dir = mkdtempSync(join(tmpdir(), "migration-refusals-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));


interface EmptyDatabase {
  handle: DatabaseHandle;
  /** PostgreSQL: the database's URL. */
  url?: string;
  dispose(): Promise<void>;
}

/** An empty database, not migrated, opened the way a host opens its own handle. */
async function emptyDatabase(backend: BackendName): Promise<EmptyDatabase> {
  if (backend === "pglite") {
    const handle = unmigratedPgliteHandle();
    return { handle, dispose: () => handle.close() };
  }
  const name = `mig_refuse_${randomBytes(6).toString("hex")}`;
  await adminQuery(`create database ${name}`);
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  const pool = new pg.Pool({ connectionString: url.toString(), max: 2 });
  // pool.end() can resolve before a client's socket has closed; the forced drop then terminates it
  // (57P01), and a client without an error listener makes that an unhandled error of the test run
  // (seen once in CI). Errors after the test are of no interest.
  pool.on("connect", (client) => client.on("error", () => undefined));
  pool.on("error", () => undefined);
  const handle: DatabaseHandle = {
    db: drizzlePg(pool) as unknown as Database,
    kind: "postgres",
    url: url.toString(),
    ping: async () => void (await pool.query("select 1")),
    close: () => pool.end(),
  };
  return {
    handle,
    url: url.toString(),
    async dispose() {
      await pool.end();
      await adminQuery(`drop database if exists ${name} with (force)`);
    },
  };
}

/** Each test on a fresh database, disposed of whatever happens. */
async function withDatabase(backend: BackendName, run: (database: EmptyDatabase) => Promise<void>): Promise<void> {
  const database = await emptyDatabase(backend);
  try {
    await run(database);
  } finally {
    await database.dispose();
  }
}

const recorded = async (db: Database) =>
  (await queryRows<{ created_at: string }>(db, sql.raw(`select created_at::text from ${CREDITS_TABLE} order by created_at, id`))).map((r) =>
    Number(r.created_at),
  );
const recordNewerRelease = (db: Database) => db.execute(sql.raw(`insert into ${CREDITS_TABLE} (hash, created_at) values ('ffff', ${FUTURE})`));
const forget = (db: Database, when: number) => db.execute(sql.raw(`delete from ${CREDITS_TABLE} where created_at = ${when}`));

describe.each(BACKENDS)("migrations refused on %s", (backend) => {
  it("refuses a database migrated by a newer release, applying nothing", () =>
    withDatabase(backend, async ({ handle }) => {
      await applyMigrations(handle.db, MIGRATIONS_FOLDER);
      await recordNewerRelease(handle.db);
      const before = await recorded(handle.db);
      await expect(applyMigrations(handle.db, MIGRATIONS_FOLDER)).rejects.toThrow(NEWER_RELEASE);
      expect(await recorded(handle.db)).toEqual(before);
      expect((await migrationState(handle.db, MIGRATIONS_FOLDER)).refusal).toMatch(NEWER_RELEASE);
    }), 120_000);

  it("refuses a newer release's database where one of ours is not recorded, instead of skipping it", () =>
    withDatabase(backend, async ({ handle }) => {
      await applyMigrations(handle.db, MIGRATIONS_FOLDER);
      await forget(handle.db, NEWEST.when);
      await recordNewerRelease(handle.db);
      await expect(applyMigrations(handle.db, MIGRATIONS_FOLDER)).rejects.toThrow(NEWER_RELEASE);
      const after = await recorded(handle.db);
      expect(after).not.toContain(NEWEST.when);
      expect(after).toHaveLength(ALL);
      expect((await migrationState(handle.db, MIGRATIONS_FOLDER)).refusal).toMatch(NEWER_RELEASE);
    }), 120_000);

  it("refuses a gap (one of ours not recorded while a later one is), naming the missing migration", () =>
    withDatabase(backend, async ({ handle }) => {
      await applyMigrations(handle.db, MIGRATIONS_FOLDER);
      const missing = JOURNAL.entries[ALL - 3];
      await forget(handle.db, missing.when);
      const gap = new RegExp(`credits migration ${missing.tag} is not recorded in ${CREDITS_TABLE} while later ones are.*not safe`);
      await expect(applyMigrations(handle.db, MIGRATIONS_FOLDER)).rejects.toThrow(gap);
      expect(await recorded(handle.db)).toHaveLength(ALL - 1);
      expect((await migrationState(handle.db, MIGRATIONS_FOLDER)).refusal).toMatch(gap);
    }), 120_000);

  it("applies the trailing migrations in order and returns their tags", () =>
    withDatabase(backend, async ({ handle }) => {
      const older = await applyMigrations(handle.db, migrationsUpTo(dir, ALL - 2));
      expect(older).toEqual(JOURNAL.entries.slice(0, ALL - 2).map((e) => e.tag));
      expect(await migrationState(handle.db, MIGRATIONS_FOLDER)).toEqual({ tables: true, pending: 2, refusal: undefined });
      expect(await applyMigrations(handle.db, MIGRATIONS_FOLDER)).toEqual(JOURNAL.entries.slice(ALL - 2).map((e) => e.tag));
      expect(await recorded(handle.db)).toEqual(JOURNAL.entries.map((e) => e.when));
      expect(await applyMigrations(handle.db, MIGRATIONS_FOLDER)).toEqual([]);
      expect(await migrationState(handle.db, MIGRATIONS_FOLDER)).toEqual({ tables: true, pending: 0, refusal: undefined });
    }), 120_000);

  it("does not take a host's own rows in drizzle's shared table, dated later, for a newer release's", () =>
    withDatabase(backend, async ({ handle }) => {
      // A database migrated the old way: our first ALL - 3 in drizzle.__drizzle_migrations, beside a host's newer row.
      await applyMigrations(handle.db, migrationsUpTo(dir, ALL - 3));
      await handle.db.execute(sql.raw(`create table drizzle.__drizzle_migrations (id serial primary key, hash text not null, created_at bigint)`));
      await handle.db.execute(sql.raw(`insert into drizzle.__drizzle_migrations (hash, created_at) select hash, created_at from ${CREDITS_TABLE} order by id`));
      await handle.db.execute(sql.raw(`insert into drizzle.__drizzle_migrations (hash, created_at) values ('host', ${FUTURE})`));
      await handle.db.execute(sql.raw(`drop table ${CREDITS_TABLE}`));
      expect(await migrationState(handle.db, MIGRATIONS_FOLDER)).toEqual({ tables: true, pending: 3, refusal: undefined });
      expect(await applyMigrations(handle.db, MIGRATIONS_FOLDER)).toEqual(JOURNAL.entries.slice(ALL - 3).map((e) => e.tag));
      expect(await recorded(handle.db)).toEqual(JOURNAL.entries.map((e) => e.when));
    }), 120_000);

  it("refuses createCredits on an open handle a newer release migrated (migrate: true, the default)", () =>
    withDatabase(backend, async ({ handle }) => {
      await applyMigrations(handle.db, MIGRATIONS_FOLDER);
      await recordNewerRelease(handle.db);
      const started = createCredits({ database: handle, creditTypes: ["calls"], caller: () => undefined, recovery: false, logger: createLogger("silent") });
      await expect(started).rejects.toThrow(NEWER_RELEASE);
    }), 120_000);

  it("refuses createCredits with `migrate: false` on a handle a newer release migrated (the host migrates, but serving on it is not safe)", () =>
    withDatabase(backend, async ({ handle }) => {
      await applyMigrations(handle.db, MIGRATIONS_FOLDER);
      await recordNewerRelease(handle.db);
      const started = createCredits({ database: handle, migrate: false, creditTypes: ["calls"], caller: () => undefined, recovery: false, logger: createLogger("silent") });
      await expect(started).rejects.toThrow(/^createCredits: the database was migrated by a newer release/);
    }), 120_000);
});

describe.each(BACKENDS)("the start (connectDatabase) on %s", (backend) => {
  it("stops on a database a newer release migrated, saying why in the one line `npm start` logs", async () => {
    if (backend === "postgres") {
      await withDatabase(backend, async ({ handle, url }) => {
        await applyMigrations(handle.db, MIGRATIONS_FOLDER);
        await recordNewerRelease(handle.db);
        const failed = await connectDatabase({ databaseUrl: url, poolSize: 2 }).then(
          (opened) => opened.close().then(() => undefined),
          (err: unknown) => err,
        );
        expect(failed).toBeInstanceOf(Error);
        const failure = databaseStartFailure({ databaseUrl: url, pgliteDir: "unused" }, failed);
        expect(failure.message).toMatch(/^DATABASE_URL: PostgreSQL at .* failed at start \(the database was migrated by a newer release/);
        expect(failure.message).toMatch(NEWER_RELEASE);
      });
      return;
    }
    const location = join(dir, `pglite-${randomBytes(4).toString("hex")}`);
    const first = await connectDatabase({ pgliteDir: location });
    await first.close();
    const client = new PGlite(location);
    await recordNewerRelease(drizzlePglite(client) as unknown as Database);
    await client.close();
    const failed = await connectDatabase({ pgliteDir: location }).then(
      (opened) => opened.close().then(() => undefined),
      (err: unknown) => err,
    );
    expect(failed).toBeInstanceOf(Error);
    expect(databaseStartFailure({ pgliteDir: location }, failed).message).toMatch(NEWER_RELEASE);
    // The refused start let go of the directory: once the row is gone, it opens.
    const fixed = new PGlite(location);
    await fixed.query(`delete from ${CREDITS_TABLE} where created_at = ${FUTURE}`);
    await fixed.close();
    const reopened = await connectDatabase({ pgliteDir: location });
    await reopened.close();
  }, 120_000);
});
