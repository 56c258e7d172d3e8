/**
 * Applies drizzle/ migrations on PostgreSQL and PGlite, so that it works through a transaction-mode
 * pooler (PgBouncer, Supabase's port 6543): everything runs in ONE transaction that first takes a
 * transaction-scoped advisory lock. A session lock (pg_advisory_lock … pg_advisory_unlock) does not
 * survive a pooler: each statement outside a transaction may run on another server connection, so
 * two instances starting together both "held" it (and raced on CREATE TABLE), and the unlock could
 * miss the connection that held it, leaving it locked for the next start. A transaction is pinned to
 * one server connection, and its lock goes with its commit or rollback.
 *
 * The bookkeeping is drizzle's (one row per migration with its hash and folder time), in a table of
 * the credits core's own, drizzle.__graphql_credits_migrations, never drizzle's default
 * drizzle.__drizzle_migrations: a host that runs drizzle migrations of its own on the same database
 * keeps that one, and two migrators sharing one table each skip what is older than the other's newest
 * row.
 *
 * Unlike drizzle's migrator, which applies what is newer than the newest row, every recorded row is
 * checked against this release's journal, and the start is refused (nothing applied) when
 * - a row is not one of this release's migrations: a newer release migrated the database, and this
 *   one would serve on a schema it does not know (a downgrade); or
 * - one of this release's migrations is not recorded while a later one is (a gap): it would be
 *   skipped, and running it after the later ones is not safe either.
 * Otherwise the unrecorded migrations after the newest recorded one are applied, in order.
 *
 * Older versions recorded the credits migrations in drizzle.__drizzle_migrations. While the credits
 * table is empty, the rows of that table whose folder time is one of the credits migrations' are
 * copied into it first, in the same transaction under the same lock, so a database migrated the old
 * way runs nothing twice (its hash may be an older text of the file: it is kept as it was). The old
 * rows stay where they are, so an older version started again still finds itself up to date. Only
 * the credits table's rows are checked: the shared table may hold the host's own migrations too.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import { readMigrationFiles, type MigrationMeta } from "drizzle-orm/migrator";
import type { Logger } from "pino";
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

/** The database is not one this release may migrate or serve on (a newer release's, or a gap): nothing was applied. */
export class MigrationsRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MigrationsRefusedError";
  }
}

/** A migration of this release, with its journal tag (0021_…) to name it by. */
interface Migration extends MigrationMeta {
  tag: string;
}

/** What the recorded folder times say against this release's migrations. */
interface MigrationPlan {
  /** Recorded folder times that are none of this release's migrations (a newer release's), ascending. */
  unknown: number[];
  /** Ours not recorded while a later one of ours is: skipped for good, and unsafe to run now. */
  missing: Migration[];
  /** Ours after the newest of ours recorded, in order: what applying brings in. */
  pending: Migration[];
}

/**
 * Brings the database up to date with `migrationsFolder` (idempotent; safe for instances starting
 * together) and returns the tags of the migrations it applied, in order ([] when up to date).
 * Throws MigrationsRefusedError, applying nothing, for a database migrated by a newer release or
 * with a gap in the recorded migrations.
 */
export async function applyMigrations(db: Database, migrationsFolder: string): Promise<string[]> {
  const migrations = readMigrations(migrationsFolder);
  return db.transaction(async (tx) => {
    // Instances starting together wait here for the first to commit, then find nothing left to apply.
    await tx.execute(sql`select pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`);
    await tx.execute(sql.raw(`create schema if not exists "${MIGRATIONS_SCHEMA}"`));
    await tx.execute(sql`create table if not exists ${credits} (id serial primary key, hash text not null, created_at bigint)`);
    let recorded = await recordedTimes(tx);
    if (recorded.length === 0 && migrations.length > 0) {
      await adoptSharedRows(tx, migrations);
      recorded = await recordedTimes(tx);
    }
    const plan = planMigrations(migrations, recorded);
    const refusal = refusalOf(plan);
    // Thrown inside the transaction: it rolls back, the adopted rows with it.
    if (refusal !== undefined) throw new MigrationsRefusedError(refusal);
    for (const migration of plan.pending) {
      for (const statement of migration.sql) await tx.execute(sql.raw(statement));
      await tx.execute(sql`insert into ${credits} (hash, created_at) values (${migration.hash}, ${migration.folderMillis})`);
    }
    return plan.pending.map((m) => m.tag);
  });
}

/** drizzle's reading of the folder (statements, hash, folder time), with each migration's tag from the same journal. */
function readMigrations(migrationsFolder: string): Migration[] {
  const journal = JSON.parse(readFileSync(join(migrationsFolder, "meta", "_journal.json"), "utf8")) as { entries: { tag: string }[] };
  // readMigrationFiles reads the journal's entries in order, one migration each.
  return readMigrationFiles({ migrationsFolder }).map((migration, i) => ({ ...migration, tag: journal.entries[i].tag }));
}

/** The folder times recorded in the credits table (a row without one, which no migrator writes, says nothing). */
async function recordedTimes(db: DbOrTx): Promise<number[]> {
  const rows = await queryRows<{ created_at: string | number }>(db, sql`select created_at from ${credits} where created_at is not null`);
  return rows.map((r) => Number(r.created_at));
}

/** The folder times recorded in drizzle's default table that are ours (the others are the host's). */
async function sharedTimesOfOurs(db: DbOrTx, migrations: Migration[]): Promise<number[]> {
  const rows = await queryRows<{ created_at: string | number }>(db, sql`select created_at from ${shared} where created_at in (${folderTimes(migrations)})`);
  return rows.map((r) => Number(r.created_at));
}

/** Folder times are integers read from our own journal: written out, not bound (one literal list). */
function folderTimes(migrations: Migration[]) {
  return sql.raw(migrations.map((m) => String(Math.trunc(m.folderMillis))).join(", "));
}

/** Copies the credits migrations an older version recorded in drizzle's default table (one row per migration). */
async function adoptSharedRows(db: DbOrTx, migrations: Migration[]): Promise<void> {
  const [{ present }] = await queryRows<{ present: boolean }>(
    db,
    sql`select to_regclass(${`${MIGRATIONS_SCHEMA}.${SHARED_TABLE}`}) is not null as present`,
  );
  if (!present) return;
  await db.execute(sql`
    insert into ${credits} (hash, created_at)
    select hash, created_at
      from (select distinct on (created_at) hash, created_at, id from ${shared} where created_at in (${folderTimes(migrations)}) order by created_at, id) as old
     order by created_at`);
}

/** Sorts the recorded folder times into unknown ones, gaps among ours and ours still to apply. */
function planMigrations(migrations: Migration[], recorded: number[]): MigrationPlan {
  const done = new Set(recorded);
  const ours = new Set(migrations.map((m) => m.folderMillis));
  const unknown = [...done].filter((t) => !ours.has(t)).sort((a, b) => a - b);
  let newest = -1;
  migrations.forEach((m, i) => {
    if (done.has(m.folderMillis)) newest = i;
  });
  const missing = migrations.slice(0, newest + 1).filter((m) => !done.has(m.folderMillis));
  return { unknown, missing, pending: migrations.slice(newest + 1) };
}

/** Why this release must not migrate nor serve the database, or undefined. */
function refusalOf(plan: MigrationPlan): string | undefined {
  if (plan.unknown.length > 0) {
    const count = plan.unknown.length;
    return (
      `the database was migrated by a newer release of graphql-credits (${count} migration${count === 1 ? "" : "s"} this release does not know, ` +
      `recorded for ${listed(plan.unknown.map(isoTime))}): run that release or a later one; downgrades are not supported (docs/upgrading.md)`
    );
  }
  if (plan.missing.length > 0) {
    const count = plan.missing.length;
    return (
      `the credits migration${count === 1 ? "" : "s"} ${listed(plan.missing.map((m) => m.tag))} ${count === 1 ? "is" : "are"} not recorded in ` +
      `${MIGRATIONS_SCHEMA}.${MIGRATIONS_TABLE} while later ones are, and applying ${count === 1 ? "it" : "them"} after those is not safe: ` +
      `see docs/upgrading.md ("Downgrades") before starting on this database`
    );
  }
  return undefined;
}

/** The first few, then how many more: a message stays one readable line. */
function listed(items: string[]): string {
  const shown = items.slice(0, 3).join(", ");
  return items.length > 3 ? `${shown} and ${items.length - 3} more` : shown;
}

/** A folder time as an ISO time; a number no Date can hold, as it is. */
function isoTime(ms: number): string {
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? String(ms) : date.toISOString();
}

/** What a database that is not migrated at start has of the credits schema (createCredits with `migrate: false`). */
export interface MigrationState {
  /** The credits tables exist. */
  tables: boolean;
  /** Migrations of `migrationsFolder` that migrating would apply (undefined: no record of any). */
  pending: number | undefined;
  /** Why migrating would be refused, and serving must be too (a newer release's migrations, or a gap), in the words applyMigrations throws. */
  refusal: string | undefined;
}

/** A few cheap queries: do the credits tables exist, what is recorded, and what migrating would do. */
export async function migrationState(db: Database, migrationsFolder: string): Promise<MigrationState> {
  const [found] = await queryRows<{ tables: boolean; own: boolean; old: boolean }>(
    db,
    sql`select to_regclass('credit_balances') is not null as tables,
               to_regclass(${`${MIGRATIONS_SCHEMA}.${MIGRATIONS_TABLE}`}) is not null as own,
               to_regclass(${`${MIGRATIONS_SCHEMA}.${SHARED_TABLE}`}) is not null as old`,
  );
  if (!found.own && !found.old) return { tables: found.tables, pending: undefined, refusal: undefined };
  const migrations = readMigrations(migrationsFolder);
  // What applyMigrations reads: the credits table's rows, or while it has none, ours among the shared table's.
  let recorded = found.own ? await recordedTimes(db) : [];
  if (recorded.length === 0 && found.old && migrations.length > 0) recorded = await sharedTimesOfOurs(db, migrations);
  const plan = planMigrations(migrations, recorded);
  return { tables: found.tables, pending: found.tables ? plan.pending.length : undefined, refusal: refusalOf(plan) };
}

/** One line when a start changed the schema (none when it was up to date): which migrations, in order. */
export function logAppliedMigrations(logger: Logger | undefined, applied: string[]): void {
  if (applied.length === 0) return;
  logger?.info({ event: "database.migrated", migrations: applied }, `applied ${applied.length} database migration(s): ${applied.join(", ")}`);
}
