/**
 * The relay statement on PGlite and PostgreSQL: it moves the ledger trigger's outbox rows to NOTIFY
 * (emptying the outbox) and reads the database's clock while it runs, which the hub spaces a
 * balance's events by.
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../../src/db/database.js";
import { relayOutbox } from "../../src/live/notification-relay.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";

describe.each(BACKENDS)("relayOutbox on %s", (backend) => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase(backend);
  });
  afterAll(async () => {
    await database?.dispose();
  });

  it("moves the outbox rows and reads the database's clock", async () => {
    for (const n of [1, 2, 3]) await database.db.execute(sql`insert into credit_balance_change_outbox (payload) values (${`[${n}]`})`);
    const before = Date.now();
    const first = await relayOutbox(database.db);
    const after = Date.now();
    expect(first.moved).toBe(3);
    // The same machine's clock: the reading falls between the call and its answer (ms, either way rounded).
    expect(first.databaseMs).toBeGreaterThanOrEqual(before - 1);
    expect(first.databaseMs).toBeLessThanOrEqual(after + 1);
    expect(await queryRows(database.db, sql`select id from credit_balance_change_outbox`)).toEqual([]);

    const second = await relayOutbox(database.db);
    expect(second.moved).toBe(0);
    expect(second.databaseMs).toBeGreaterThanOrEqual(first.databaseMs);
  });
});
