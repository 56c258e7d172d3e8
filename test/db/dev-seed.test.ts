/**
 * Development mode's demo subscription (src/app/dev-seed.ts) on PGlite and PostgreSQL: an empty
 * database gets exactly one, however many instances start on it together, and every one of them
 * reports that one; a database that already has subscriptions gets none.
 */
import { sql } from "drizzle-orm";
import { afterEach, describe, expect, it } from "vitest";
import { DEMO_CREDITS, DEMO_USER_ID, ensureDemoSubscription } from "../../src/app/dev-seed.js";
import { connectDatabase } from "../../src/db/connect.js";
import { queryRows, type DatabaseHandle } from "../../src/db/database.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { postgresAvailable } from "../helpers/services.js";
import { fundedSubscription } from "../helpers/test-app.js";

describe.each(BACKENDS)("the demo subscription on %s", (backend) => {
  const opened: (TestDatabase | DatabaseHandle)[] = [];
  afterEach(async () => {
    // Second handles first: the test database's dispose drops the database.
    for (const handle of opened.splice(0).reverse()) await disposeOrClose(handle);
  });

  async function disposeOrClose(handle: TestDatabase | DatabaseHandle): Promise<void> {
    if ("dispose" in handle) await handle.dispose();
    else await handle.close();
  }

  async function fresh(): Promise<TestDatabase> {
    const database = await createTestDatabase(backend);
    opened.push(database);
    return database;
  }

  async function demoRows(database: DatabaseHandle): Promise<{ id: string; balance: number }[]> {
    const rows = await queryRows<{ id: string; balance: number }>(
      database.db,
      sql`select s.id, sum(b.balance)::int as balance from billing_subscriptions s join credit_balances b on b.subscription_id = s.id
           where s.owner_id = ${DEMO_USER_ID} group by s.id`,
    );
    return rows.map((r) => ({ id: r.id, balance: Number(r.balance) }));
  }

  it("seeds one, however many callers start on an empty database at once, and all report it", async () => {
    const database = await fresh();
    const ids = await Promise.all(Array.from({ length: 4 }, () => ensureDemoSubscription(database.db)));
    const demo = await demoRows(database);
    expect(demo).toHaveLength(1);
    expect(demo[0].balance).toBe(3 * DEMO_CREDITS);
    expect(ids).toEqual(ids.map(() => demo[0].id));
  });

  it("seeds none into a database that already has subscriptions", async () => {
    const database = await fresh();
    await fundedSubscription(database, "someone-else", { ai: 1 });
    expect(await ensureDemoSubscription(database.db)).toBeUndefined();
    expect(await demoRows(database)).toEqual([]);
  });
});

describe.skipIf(!postgresAvailable)("the demo subscription on PostgreSQL, from two instances", () => {
  const opened: (TestDatabase | DatabaseHandle)[] = [];
  afterEach(async () => {
    // The second pool first: the test database's dispose drops the database.
    for (const handle of opened.splice(0).reverse()) await ("dispose" in handle ? handle.dispose() : handle.close());
  });

  async function fresh(): Promise<TestDatabase> {
    const database = await createTestDatabase("postgres");
    opened.push(database);
    return database;
  }

  async function demoRows(database: DatabaseHandle): Promise<{ id: string }[]> {
    return queryRows<{ id: string }>(database.db, sql`select id from billing_subscriptions where owner_id = ${DEMO_USER_ID}`);
  }

  it("seeds one when two instances (two pools) start on an empty database together", async () => {
    const database = await fresh();
    const second = await connectDatabase({ databaseUrl: database.url!, poolSize: 4 });
    opened.push(second);
    const ids = await Promise.all([database, second, database, second].map((handle) => ensureDemoSubscription(handle.db)));
    const demo = await demoRows(database);
    expect(demo).toHaveLength(1);
    expect(new Set(ids)).toEqual(new Set([demo[0].id]));
  });

});
