/**
 * The relay statement on PGlite and PostgreSQL: it moves the ledger trigger's outbox rows to NOTIFY
 * (emptying the outbox) and reads the database's clock while it runs, which the hub spaces a
 * balance's events by.
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../../src/db/database.js";
import { relayOutbox, relayStatement } from "../../src/live/notification-relay.js";
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

/** Every node of an EXPLAIN (FORMAT JSON) plan. */
function planNodes(node: Record<string, unknown>): Record<string, unknown>[] {
  const children = (node.Plans as Record<string, unknown>[] | undefined) ?? [];
  return [node, ...children.flatMap(planNodes)];
}

describe.each(BACKENDS)("the relay statement's plan on %s", (backend) => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase(backend);
  });
  afterAll(async () => {
    await database?.dispose();
  });

  // An outside audit: `delete … where id in (select … limit … for update skip locked)` ran as a
  // nested-loop semi join that took the batch again for every outbox row (the planner's choice while
  // the table's statistics said it was small), each time skipping the rows it had locked, so one
  // statement also moved the whole outbox, not a batch; one tick ran for 9 minutes.
  it("locks and reads its batch once, whatever join the planner chooses", async () => {
    await database.db.execute(
      sql`insert into credit_balance_change_outbox (payload) select '[' || n || ']' from generate_series(1, 300) n`,
    );
    let plan: Record<string, unknown> | undefined;
    // EXPLAIN ANALYZE runs the statement: in a transaction rolled back after, the rows stay for the next test.
    await database.db
      .transaction(async (tx) => {
        // The join the audit's planner chose, made the only one available.
        await tx.execute(sql`set local enable_hashjoin = off`);
        await tx.execute(sql`set local enable_mergejoin = off`);
        await tx.execute(sql`set local enable_material = off`);
        await tx.execute(sql`set local enable_hashagg = off`);
        await tx.execute(sql`set local enable_sort = off`);
        const [row] = await queryRows<{ "QUERY PLAN": [{ Plan: Record<string, unknown> }] | string }>(
          tx,
          sql`explain (analyze, format json) ${relayStatement()}`,
        );
        const explained = row["QUERY PLAN"];
        plan = (typeof explained === "string" ? JSON.parse(explained) : explained)[0].Plan;
        tx.rollback();
      })
      .catch((err: unknown) => {
        if (!(err instanceof Error && /rollback/i.test(err.message))) throw err;
      });
    const locks = planNodes(plan!).filter((node) => node["Node Type"] === "LockRows");
    expect(locks).toHaveLength(1);
    expect(locks[0]["Actual Loops"]).toBe(1);
    expect(locks[0]["Actual Rows"]).toBe(200);
    const deletes = planNodes(plan!).filter((node) => node["Node Type"] === "ModifyTable");
    expect(deletes.map((node) => node["Actual Rows"])).toEqual([200]);
  });
});
