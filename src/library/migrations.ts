/**
 * The ledger's migrations (drizzle/ in the package), for a host that opens its own database handle:
 * createCredits applies them itself when it opens the database from a URL or a PGlite directory.
 * They are recorded in their own table, drizzle.__graphql_credits_migrations, never in drizzle's
 * default drizzle.__drizzle_migrations, which stays the host's (src/db/migrate-postgres.ts).
 */
import { MIGRATIONS_FOLDER } from "../db/connect.js";
import type { DatabaseHandle } from "../db/database.js";
import { applyMigrations, MIGRATIONS_SCHEMA, MIGRATIONS_TABLE, MigrationsRefusedError } from "../db/migrate-postgres.js";

export { MIGRATIONS_FOLDER, MIGRATIONS_SCHEMA, MIGRATIONS_TABLE, MigrationsRefusedError };

/**
 * Brings the credits tables of an open handle up to date: idempotent, in one transaction under an
 * advisory lock (instances starting together do not race), recorded in drizzle.__graphql_credits_migrations.
 * Rejects with MigrationsRefusedError, applying nothing, on a database a newer release migrated
 * (downgrades are not supported) or one where a migration is missing before a later recorded one.
 */
export async function migrateCredits(handle: DatabaseHandle): Promise<void> {
  await applyMigrations(handle.db, MIGRATIONS_FOLDER);
}
