/**
 * The ledger's migrations (drizzle/ in the package), for a host that opens its own database handle:
 * createCredits applies them itself when it opens the database from a URL or a PGlite directory.
 */
import { MIGRATIONS_FOLDER } from "../db/connect.js";
import type { DatabaseHandle } from "../db/database.js";
import { migratePostgres } from "../db/migrate-postgres.js";

export { MIGRATIONS_FOLDER };

/** Brings the credits tables of an open handle up to date (idempotent; PostgreSQL under an advisory lock). */
export async function migrateCredits(handle: DatabaseHandle): Promise<void> {
  if (handle.kind === "postgres") {
    await migratePostgres(handle.db, MIGRATIONS_FOLDER);
    return;
  }
  const { migrate } = await import("drizzle-orm/pglite/migrator");
  await migrate(handle.db as unknown as Parameters<typeof migrate>[0], { migrationsFolder: MIGRATIONS_FOLDER });
}
