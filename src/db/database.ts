/**
 * The data-access handle shared by both backends. Code above src/db only sees `Database` (a Drizzle
 * PgDatabase) and never learns whether PGlite or node-postgres runs underneath.
 */
import type { PgDatabase, PgQueryResultHKT, PgTransaction } from "drizzle-orm/pg-core";
import type { ExtractTablesWithRelations, SQL } from "drizzle-orm";
import type * as schema from "./schema/index.js";

export type Schema = typeof schema;
export type Database = PgDatabase<PgQueryResultHKT, Schema>;
export type Transaction = PgTransaction<PgQueryResultHKT, Schema, ExtractTablesWithRelations<Schema>>;
/** Either the database or an open transaction: ledger functions take whichever the caller holds. */
export type DbOrTx = Database | Transaction;

export type DatabaseKind = "pglite" | "postgres";

export interface DatabaseHandle {
  readonly db: Database;
  /**
   * PostgreSQL opened by connectDatabase: a one-connection pool of its own, on the same URL, for the
   * instance lease and ping(), which must not wait behind requests holding every connection of
   * `db`'s pool. Absent (PGlite, whose one connection serves all; a host's own handle): they use `db`.
   */
  readonly control?: Database;
  readonly kind: DatabaseKind;
  /** PostgreSQL: the URL the pool connects to (live balance opens its own LISTEN session from it). */
  readonly url?: string;
  /** PGlite: LISTEN inside the process; resolves to the function that stops listening. */
  listen?(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>>;
  /** Resolves when the database answers a trivial query; rejects otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Runs raw SQL on either backend and returns its rows (both drivers answer with `{ rows }`). */
export async function queryRows<T>(db: DbOrTx, query: SQL): Promise<T[]> {
  const result = (await db.execute(query)) as unknown as { rows: T[] };
  return result.rows;
}
