/**
 * Applies drizzle/ migrations on PostgreSQL and PGlite, so that it works through a transaction-mode
 * pooler (PgBouncer, Supabase's port 6543): everything runs in ONE transaction that first takes a
 * transaction-scoped advisory lock. A session lock (pg_advisory_lock … pg_advisory_unlock) does not
 * survive a pooler: each statement outside a transaction may run on another server connection, so
 * two instances starting together both "held" it (and raced on CREATE TABLE), and the unlock could
 * miss the connection that held it, leaving it locked for the next start. A transaction is pinned to
 * one server connection, and its lock goes with its commit or rollback.
 *
 * The bookkeeping is drizzle's (one row per migration with its hash and folder time; a migration
 * newer than the newest row is applied), in a table of the credits core's own,
 * drizzle.__graphql_credits_migrations, never drizzle's default drizzle.__drizzle_migrations: a host
 * that runs drizzle migrations of its own on the same database keeps that one, and two migrators
 * sharing one table each skip what is older than the other's newest row.
 *
 * Older versions recorded the credits migrations in drizzle.__drizzle_migrations. While the credits
 * table is empty, the rows of that table whose folder time is one of the credits migrations' are
 * copied into it first, in the same transaction under the same lock, so a database migrated the old
 * way runs nothing twice (its hash may be an older text of the file: it is kept as it was). The old
 * rows stay where they are, so an older version started again still finds itself up to date.
 */
import { sql } from "drizzle-orm";
import { readMigrationFiles } from "drizzle-orm/migrator";
import { queryRows, type Database, type DbOrTx } from "./database.js";

/** Arbitrary constant that names the migration lock among this database's advisory locks. */
const MIGRATION_LOCK_KEY = 7_231_004;

/** Where the credits migrations are recorded (drizzle's migrationsSchema / migrationsTable; drizzle.config.ts says the same). */
export const MIGRATIONS_SCHEMA = "drizzle";
export const MIGRATIONS_TABLE = "__graphql_credits_migrations";
/** Where versions before the credits core had its own table recorded them: drizzle's default. */
const SHARED_TABLE = "__drizzle_migrations";

const credits = sql.raw(`"${MIGRATIONS_SCHEMA}"."${MIGRATIONS_TABLE}"`);
const shared = sql.raw(`"${MIGRATIONS_SCHEMA}"."${SHARED_TABLE}"`);

/** Brings the database up to date with `migrationsFolder` (idempotent; safe for instances starting together). */
export async function applyMigrations(db: Database, migrationsFolder: string): Promise<void> {
  const migrations = readMigrationFiles({ migrationsFolder });
  await db.transaction(async (tx) => {
    // Instances starting together wait here for the first to commit, then find nothing left to apply.
    await tx.execute(sql`select pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`);
    await tx.execute(sql.raw(`create schema if not exists "${MIGRATIONS_SCHEMA}"`));
    await tx.execute(sql`create table if not exists ${credits} (id serial primary key, hash text not null, created_at bigint)`);
    let last = await newestRecorded(tx);
    if (last === undefined && migrations.length > 0) {
      await adoptSharedRows(tx, migrations.map((m) => m.folderMillis));
      last = await newestRecorded(tx);
    }
    const appliedUpTo = last ?? -Infinity;
    for (const migration of migrations) {
      if (migration.folderMillis <= appliedUpTo) continue;
      for (const statement of migration.sql) await tx.execute(sql.raw(statement));
      await tx.execute(sql`insert into ${credits} (hash, created_at) values (${migration.hash}, ${migration.folderMillis})`);
    }
  });
}

async function newestRecorded(db: DbOrTx): Promise<number | undefined> {
  const rows = await queryRows<{ created_at: string | number | null }>(db, sql`select max(created_at) as created_at from ${credits}`);
  return rows[0]?.created_at == null ? undefined : Number(rows[0].created_at);
}

/** Copies the credits migrations an older version recorded in drizzle's default table (one row per migration). */
async function adoptSharedRows(db: DbOrTx, folderMillis: number[]): Promise<void> {
  const [{ present }] = await queryRows<{ present: boolean }>(
    db,
    sql`select to_regclass(${`${MIGRATIONS_SCHEMA}.${SHARED_TABLE}`}) is not null as present`,
  );
  if (!present) return;
  // Folder times are integers read from our own journal: written out, not bound (one literal list).
  const ours = sql.raw(folderMillis.map((ms) => String(Math.trunc(ms))).join(", "));
  await db.execute(sql`
    insert into ${credits} (hash, created_at)
    select hash, created_at
      from (select distinct on (created_at) hash, created_at, id from ${shared} where created_at in (${ours}) order by created_at, id) as old
     order by created_at`);
}

/** What a database that is not migrated at start has of the credits schema (createCredits with `migrate: false`). */
export interface MigrationState {
  /** The credits tables exist. */
  tables: boolean;
  /** Migrations of `migrationsFolder` newer than the newest one recorded (undefined: no record of any). */
  pending: number | undefined;
}

/** Two cheap queries: do the credits tables exist, and how many migrations are not recorded yet. */
export async function migrationState(db: Database, migrationsFolder: string): Promise<MigrationState> {
  const [found] = await queryRows<{ tables: boolean; own: boolean; old: boolean }>(
    db,
    sql`select to_regclass('credit_balances') is not null as tables,
               to_regclass(${`${MIGRATIONS_SCHEMA}.${MIGRATIONS_TABLE}`}) is not null as own,
               to_regclass(${`${MIGRATIONS_SCHEMA}.${SHARED_TABLE}`}) is not null as old`,
  );
  if (!found.tables) return { tables: false, pending: undefined };
  if (!found.own && !found.old) return { tables: true, pending: undefined };
  const recorded = await queryRows<{ created_at: string | number }>(
    db,
    found.own && found.old
      ? sql`select created_at from ${credits} union all select created_at from ${shared}`
      : sql`select created_at from ${found.own ? credits : shared}`,
  );
  const applied = new Set(recorded.map((r) => Number(r.created_at)));
  const pending = readMigrationFiles({ migrationsFolder }).filter((m) => !applied.has(m.folderMillis)).length;
  return { tables: true, pending };
}
