/**
 * A settlement that fails every quick retry is written in the background once the database answers
 * (LateSettlements in src/ledger/settlement-batcher.ts). Found by an outside audit: the late
 * settlement reached the ledger but never the charge observer, so credits_cost_total,
 * credits_released_total and the actual/estimated ratio left the call out, and no log line said
 * what it cost. Now it is logged and counted as a settlement in time is. On PGlite and PostgreSQL.
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../../src/db/database.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { captureLogLines } from "../helpers/log-lines.js";
import { fundedSubscription, startTestServer, userToken, type TestServer } from "../helpers/test-app.js";

const SEARCH_LEADS = `mutation ($s: ID!) { searchLeads(subscriptionId: $s, input: { query: "late settlers", limit: 60 }) { total } }`;
const OPERATION = "Mutation.searchLeads";

/** The sum of the /metrics samples named `name` whose labels include `labels` (a histogram's _count, a counter). */
async function metric(url: string, name: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split("\n")) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = Object.fromEntries([...(match[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => found[k] === v)) sum += Number(match[3]);
  }
  return sum;
}

describe.each(BACKENDS)("a settlement written late, after the database came back, on %s", (backend) => {
  let database: TestDatabase;
  let server: TestServer;
  const { lines, destination } = captureLogLines();

  beforeAll(async () => {
    database = await createTestDatabase(backend);
    server = await startTestServer({ database, env: { LOG_LEVEL: "info" }, logDestination: destination });
  });
  afterAll(async () => {
    await server?.close();
    await database?.dispose();
  });

  it("is logged per call and counted in the cost, released and ratio metrics, as the ledger has it", { timeout: 40_000 }, async () => {
    const owner = `late-metrics-${backend}`;
    const subscriptionId = await fundedSubscription(database, owner, { leads: 1000 });
    const requestId = `late-settle-${backend}`;
    const metrics = () =>
      Promise.all([
        metric(server.url, "credits_cost_total", { type: "leads", operation: OPERATION }),
        metric(server.url, "credits_released_total", { type: "leads", operation: OPERATION }),
        metric(server.url, "credits_actual_estimated_ratio_count", { operation: OPERATION }),
      ]);
    const before = await metrics();

    // Every settlement of this subscription's holds fails (each quick retry too), as while the
    // database is away; the hold itself goes through.
    await database.db.execute(sql.raw(`
      create or replace function test_refuse_settle() returns trigger language plpgsql as $$
      begin
        if old.subscription_id = '${subscriptionId}'::uuid then raise exception 'simulated database outage during settle'; end if;
        return old;
      end $$`));
    await database.db.execute(sql`create trigger test_refuse_settle before delete on pending_charges for each row execute function test_refuse_settle()`);
    let res;
    try {
      res = await server.gql(SEARCH_LEADS, { s: subscriptionId }, { token: await userToken(owner), headers: { "x-request-id": requestId } });
    } finally {
      // The database "comes back": the background attempt (SETTLE_LATER_DELAYS_MS, 5 s) gets through.
      await database.db.execute(sql`drop trigger test_refuse_settle on pending_charges`);
    }
    expect(res.body.errors).toBeUndefined();
    // The response reports the hold as the cost for now.
    const [charge] = res.body.extensions!.credits.charges;
    expect(charge).toMatchObject({ charged: 60, cost: 60, released: 0 });
    expect(lines.find((l) => l.event === "credits.transaction_failed" && l.requestId === requestId)).toMatchObject({ stage: "settle" });

    await expect.poll(() => lines.some((l) => l.event === "charge.settled_late"), { timeout: 20_000, interval: 100 }).toBe(true);

    // What the ledger says the call cost: its hold less what the late settlement released.
    const rows = await queryRows<{ kind: string; amount: number }>(
      database.db,
      sql`select kind, amount from credit_ledger where id = ${charge.entryId}::uuid or refund_of = ${charge.entryId}::uuid`,
    );
    const held = -Number(rows.find((r) => r.kind === "DEBIT")!.amount);
    const released = Number(rows.find((r) => r.kind === "RELEASE")?.amount ?? 0);
    expect(held).toBe(60);
    expect(released).toBeGreaterThan(0);
    const cost = held - released;

    const after = await metrics();
    expect(after.map((n, i) => n - before[i])).toEqual([cost, released, 1]);
    const settledLine = lines.find((l) => (l.event === "credits.released" || l.event === "credits.settled") && l.requestId === requestId);
    expect(settledLine).toMatchObject({
      event: "credits.released",
      requestId,
      entryId: charge.entryId,
      subscriptionId,
      operation: OPERATION,
      creditType: "leads",
      actorId: owner,
      estimated: 60,
      charged: 60,
      actual: cost,
      cost,
      released,
    });
    // Reported once per call, not once more per batch.
    expect(lines.filter((l) => l.event === "credits.late_settlement")).toEqual([]);
  });
});
