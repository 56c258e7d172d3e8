/**
 * The relay statement on PGlite and PostgreSQL: it moves the ledger trigger's outbox rows to NOTIFY
 * (emptying the outbox) and reads the database's clock while it runs, which the hub spaces a
 * balance's events by.
 */
import { sql, type SQL } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../../src/db/database.js";
import { claimUnannouncedAlertsStatement } from "../../src/live/live-store.js";
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

/**
 * The plan `statement` runs with, and what it did, when a nested loop is the only join the planner
 * may use (the one an outside audit's planner chose with stale statistics). EXPLAIN ANALYZE runs the
 * statement: in a transaction rolled back after, so the rows stay.
 */
async function planWithNestedLoopsOnly(database: TestDatabase, statement: SQL): Promise<Record<string, unknown>[]> {
  let plan: Record<string, unknown> | undefined;
  await database.db
    .transaction(async (tx) => {
      for (const setting of ["enable_hashjoin", "enable_mergejoin", "enable_material", "enable_hashagg", "enable_sort"]) {
        await tx.execute(sql.raw(`set local ${setting} = off`));
      }
      const [row] = await queryRows<{ "QUERY PLAN": [{ Plan: Record<string, unknown> }] | string }>(tx, sql`explain (analyze, format json) ${statement}`);
      const explained = row["QUERY PLAN"];
      plan = (typeof explained === "string" ? JSON.parse(explained) : explained)[0].Plan;
      tx.rollback();
    })
    .catch((err: unknown) => {
      if (!(err instanceof Error && /rollback/i.test(err.message))) throw err;
    });
  return planNodes(plan!);
}

const nodesOf = (nodes: Record<string, unknown>[], type: string) => nodes.filter((node) => node["Node Type"] === type);

// An outside audit: `delete … where id in (select … limit … for update skip locked)` ran as a
// nested-loop semi join that took the batch again for every outbox row (the planner's choice while
// the table's statistics said it was small), each time skipping the rows it had locked, so one
// statement also moved the whole outbox, not a batch; one tick ran for 9 minutes.
describe.each(BACKENDS)("queue statements take their batch once, whatever join the planner chooses, on %s", (backend) => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase(backend);
  });
  afterAll(async () => {
    await database?.dispose();
  });

  it("the relay locks and moves one batch of the outbox", async () => {
    await database.db.execute(sql`insert into credit_balance_change_outbox (payload) select '[' || n || ']' from generate_series(1, 300) n`);
    const nodes = await planWithNestedLoopsOnly(database, relayStatement());
    expect(nodesOf(nodes, "LockRows").map((node) => [node["Actual Loops"], node["Actual Rows"]])).toEqual([[1, 200]]);
    expect(nodesOf(nodes, "ModifyTable").map((node) => node["Actual Rows"])).toEqual([200]);
  });

  it("claiming unannounced balance alerts locks and claims one batch", async () => {
    await database.db.execute(
      sql`insert into credit_alerts (kind, message, announced) select 'USAGE_SPIKE', 'alert ' || n, false from generate_series(1, 300) n`,
    );
    const nodes = await planWithNestedLoopsOnly(database, claimUnannouncedAlertsStatement(50));
    expect(nodesOf(nodes, "LockRows").map((node) => [node["Actual Loops"], node["Actual Rows"]])).toEqual([[1, 50]]);
    expect(nodesOf(nodes, "ModifyTable").map((node) => node["Actual Rows"])).toEqual([50]);
  });
});
