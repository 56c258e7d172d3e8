/**
 * Test databases: the same cases run on PGlite and on real PostgreSQL. Each PostgreSQL database is
 * created fresh (and dropped afterwards), so test files can run in parallel without sharing rows.
 */
import { randomBytes } from "node:crypto";
import { PGlite } from "@electric-sql/pglite";
import { drizzle } from "drizzle-orm/pglite";
import pg from "pg";
import { connectDatabase } from "../../src/db/connect.js";
import type { DatabaseHandle } from "../../src/db/database.js";
import { postgresAvailable, TEST_DATABASE_URL } from "./services.js";

export type BackendName = "pglite" | "postgres";

export interface TestDatabase extends DatabaseHandle {
  /** Set for PostgreSQL: the URL of this fresh database (to start servers on it). */
  readonly url?: string;
  /** Closes the handle and drops the database. */
  dispose(): Promise<void>;
}

/** Runs one statement on the server's maintenance database (create and drop databases). */
export async function adminQuery(text: string): Promise<void> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

/** A fresh, migrated PostgreSQL database. */
export async function createPostgresDatabase(poolSize = 20): Promise<TestDatabase> {
  const name = `gc_test_${randomBytes(6).toString("hex")}`;
  await adminQuery(`create database ${name}`);
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  const handle = await connectDatabase({ databaseUrl: url.toString(), poolSize });
  return {
    ...handle,
    url: url.toString(),
    async dispose() {
      await handle.close();
      await adminQuery(`drop database if exists ${name} with (force)`);
    },
  };
}

/**
 * An in-memory PGlite database opened the way a library host opens its own (docs/library.md, "Your
 * own database handle"): not migrated; the caller closes it.
 */
export function unmigratedPgliteHandle(): DatabaseHandle {
  const client = new PGlite();
  return {
    db: drizzle(client) as unknown as DatabaseHandle["db"],
    kind: "pglite",
    ping: async () => void (await client.query("select 1")),
    close: () => client.close(),
  };
}

/** A fresh, migrated in-memory PGlite database. */
export async function createPgliteDatabase(): Promise<TestDatabase> {
  const handle = await connectDatabase({ pgliteDir: "memory://" });
  return { ...handle, dispose: () => handle.close() };
}

export function createTestDatabase(backend: BackendName): Promise<TestDatabase> {
  return backend === "postgres" ? createPostgresDatabase() : createPgliteDatabase();
}

/**
 * The backends to run database cases on: PGlite always; PostgreSQL when it answers (always under
 * REQUIRE_SERVICES=1, where a missing server fails the run instead).
 * Use: `describe.each(BACKENDS)("… on %s", (backend) => { … })`.
 */
export const BACKENDS: BackendName[] = postgresAvailable ? ["pglite", "postgres"] : ["pglite"];
