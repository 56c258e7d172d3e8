/**
 * Applies drizzle/ migrations on PostgreSQL so that it works through a transaction-mode pooler
 * (PgBouncer, Supabase's port 6543): everything runs in ONE transaction that first takes a
 * transaction-scoped advisory lock. A session lock (pg_advisory_lock … pg_advisory_unlock) does not
 * survive a pooler: each statement outside a transaction may run on another server connection, so
 * two instances starting together both "held" it (and raced on CREATE TABLE), and the unlock could
 * miss the connection that held it, leaving it locked for the next start. A transaction is pinned to
 * one server connection, and its lock goes with its commit or rollback.
 *
 * It keeps drizzle's own bookkeeping (drizzle.__drizzle_migrations, one row per migration with its
 * hash and folder time; a migration newer than the last row is applied), as drizzle's migrator does,
 * so a database migrated by either one is up to date for the other.
 */
import { sql } from "drizzle-orm";
import { readMigrationFiles } from "drizzle-orm/migrator";
import { queryRows, type Database } from "./database.js";

/** Arbitrary constant that names the migration lock among this database's advisory locks. */
const MIGRATION_LOCK_KEY = 7_231_004;

export async function migratePostgres(db: Database, migrationsFolder: string): Promise<void> {
  const migrations = readMigrationFiles({ migrationsFolder });
  await db.transaction(async (tx) => {
    // Instances starting together wait here for the first to commit, then find nothing left to apply.
    await tx.execute(sql`select pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`);
    await tx.execute(sql`create schema if not exists drizzle`);
    await tx.execute(
      sql`create table if not exists drizzle.__drizzle_migrations (id serial primary key, hash text not null, created_at bigint)`,
    );
    const last = await queryRows<{ created_at: string | number }>(
      tx,
      sql`select created_at from drizzle.__drizzle_migrations order by created_at desc limit 1`,
    );
    const appliedUpTo = last.length > 0 ? Number(last[0].created_at) : -Infinity;
    for (const migration of migrations) {
      if (migration.folderMillis <= appliedUpTo) continue;
      for (const statement of migration.sql) await tx.execute(sql.raw(statement));
      await tx.execute(
        sql`insert into drizzle.__drizzle_migrations (hash, created_at) values (${migration.hash}, ${migration.folderMillis})`,
      );
    }
  });
}
