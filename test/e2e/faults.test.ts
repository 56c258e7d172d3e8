/**
 * Database faults on the charge path, over HTTP:
 * - a refund that fails on the database leaves the charge pending, and the recovery pass refunds it;
 * - a call that outlives CHARGE_SETTLE_TIMEOUT is refunded by recovery, and its late success is
 *   reported (credits.late_settlement) and never charged again;
 * - (PostgreSQL) a connection killed in the middle of the debit statement leaves nothing behind and
 *   answers a masked 500; the next request works on a fresh connection.
 */
import { Writable } from "node:stream";
import { sql } from "drizzle-orm";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BACKENDS, createPostgresDatabase, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { postgresAvailable, TEST_DATABASE_URL } from "../helpers/services.js";
import { fundedSubscription, postGraphQL, startTestServer, userToken, type TestServer } from "../helpers/test-app.js";
import { loadConfig } from "../../src/config/config.js";
import { createApp } from "../../src/app/create-app.js";
import { queryRows, type Database } from "../../src/db/database.js";
import { MASKED_MESSAGE } from "../../src/graphql/format-error.js";
import { auditLedger } from "../../src/ledger/audit.js";
import { createLogger } from "../../src/observability/logger.js";
import { runRecoveryPass } from "../../src/recovery/recovery-pass.js";

const RUN_AI = `mutation Run($sub: ID!) { runAiTask(subscriptionId: $sub, input: { prompt: "fault", maxTokens: 16 }) { output } }`;
const silent = createLogger("silent");
const recoverNow = (db: Database) =>
  runRecoveryPass({ db, settleTimeoutMs: 5 * 60_000, logger: silent, clock: () => new Date(Date.now() + 6 * 60_000) });

async function balance(db: Database, subscriptionId: string): Promise<number> {
  const rows = await queryRows<{ balance: number }>(
    db,
    sql`select balance from credit_balances where subscription_id = ${subscriptionId}::uuid and credit_type = 'ai'`,
  );
  return Number(rows[0].balance);
}

async function ledgerKinds(db: Database, subscriptionId: string): Promise<string[]> {
  const rows = await queryRows<{ kind: string }>(db, sql`select kind from credit_ledger where subscription_id = ${subscriptionId}::uuid order by seq`);
  return rows.map((r) => r.kind);
}

async function pendingCount(db: Database, subscriptionId: string): Promise<number> {
  const rows = await queryRows<{ n: number }>(db, sql`select count(*)::int as n from pending_charges where subscription_id = ${subscriptionId}::uuid`);
  return Number(rows[0].n);
}

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe.each(BACKENDS)("charge-path faults on %s", (backend) => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase(backend);
  });
  afterAll(() => database?.dispose());

  it("a refund that fails on the database is retried by the recovery pass", async () => {
    const server = await startTestServer({ database, env: { SIMULATE_FAILURES: "1" } });
    try {
      const sub = await fundedSubscription(database, "fault-owner", { ai: 10 });
      // A test-only trigger makes every settle/refund of this subscription's charges fail.
      await database.db.execute(sql.raw(`
        create or replace function test_refuse_refund() returns trigger language plpgsql as $$
        begin
          if old.subscription_id = '${sub}'::uuid then raise exception 'simulated database failure during refund'; end if;
          return old;
        end $$`));
      await database.db.execute(sql`create trigger test_refuse_refund before delete on pending_charges for each row execute function test_refuse_refund()`);
      let res;
      try {
        res = await server.gql(RUN_AI, { sub }, { token: await userToken("fault-owner"), headers: { "x-simulate-failure": "system" } });
      } finally {
        await database.db.execute(sql`drop trigger test_refuse_refund on pending_charges`);
      }
      expect(res.status).toBe(500);
      expect(res.body.errors![0].message).toBe(MASKED_MESSAGE);
      expect(res.body.extensions!.credits.charges[0]).toMatchObject({ charged: 1, refunded: 0 });
      expect(await balance(database.db, sub)).toBe(9);
      expect(await pendingCount(database.db, sub)).toBe(1);

      const report = await recoverNow(database.db);
      expect(report.refunded).toBe(1);
      expect(await balance(database.db, sub)).toBe(10);
      expect(await ledgerKinds(database.db, sub)).toEqual(["GRANT", "DEBIT", "REFUND"]);
      expect((await auditLedger(database.db)).ok).toBe(true);
    } finally {
      await server.close();
    }
  });

  it("a success after recovery refunded the charge is reported as late and never charged again", async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split("\n").filter(Boolean)) lines.push(JSON.parse(line));
        done();
      },
    });
    const config = loadConfig({ NODE_ENV: "test", LOG_LEVEL: "info", SIMULATE_FAILURES: "1", SIMULATE_SLOW_MS: "1500", PGLITE_DIR: "memory://" });
    const app = await createApp(config, { database, logger: createLogger("info", sink) });
    try {
      const url = await app.listen(0, "127.0.0.1");
      const sub = await fundedSubscription(database, "late-owner", { ai: 10 });
      const call = postGraphQL(`${url}/graphql`, RUN_AI, { sub }, {
        token: await userToken("late-owner"),
        headers: { "x-simulate-failure": "slow" },
      });
      await waitFor(async () => (await pendingCount(database.db, sub)) === 1);
      // The resolver is still running: as far as recovery can tell, its process died.
      expect((await recoverNow(database.db)).refunded).toBe(1);

      const res = await call;
      expect(res.status).toBe(200);
      const late = lines.find((l) => l.event === "credits.late_settlement");
      expect(late).toMatchObject({ subscriptionId: sub, charged: 1, entryId: res.body.extensions!.credits.charges[0].entryId });
      expect(await ledgerKinds(database.db, sub)).toEqual(["GRANT", "DEBIT", "REFUND"]);
      expect(await balance(database.db, sub)).toBe(10);
      // The response tells the truth: the call cost nothing, and the balance is the one after the refund.
      expect(res.body.extensions!.credits.charges[0]).toMatchObject({ charged: 1, refunded: 1, cost: 0, remaining: 10 });
      expect(res.body.extensions!.credits.remaining).toEqual({ [sub]: { ai: 10 } });
      expect((await recoverNow(database.db)).refunded).toBe(0);
      expect((await auditLedger(database.db)).ok).toBe(true);
    } finally {
      await app.close();
    }
  });
});

describe.skipIf(!postgresAvailable)("a connection killed mid-debit (PostgreSQL)", () => {
  let database: TestDatabase;
  let server: TestServer;
  let admin: pg.Client;

  beforeAll(async () => {
    database = await createPostgresDatabase();
    server = await startTestServer({ database });
    admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await admin.connect();
  });
  afterAll(async () => {
    await server?.close();
    await admin?.end();
    await database?.dispose();
  });

  it("leaves no partial state: the hold is looked up, retried once, and the caller is answered and charged once", async () => {
    const sub = await fundedSubscription(database, "killed-owner", { ai: 10 });
    const dbName = new URL(database.url!).pathname.slice(1);
    // Holds the hold statement between its balance update and its commit, so it can be killed there;
    // only the first time (a sequence is not rolled back with the killed statement).
    await database.db.execute(sql.raw(`create sequence if not exists test_stall_once`));
    await database.db.execute(sql.raw(`
      create or replace function test_stall_debit() returns trigger language plpgsql as $$
      begin
        if new.subscription_id = '${sub}'::uuid and nextval('test_stall_once') = 1 then perform pg_sleep(30); end if;
        return new;
      end $$`));
    await database.db.execute(sql`create trigger test_stall_debit before insert on pending_charges for each row execute function test_stall_debit()`);
    const token = await userToken("killed-owner");
    let res;
    try {
      const call = server.gql(RUN_AI, { sub }, { token });
      let stalled: number[] = [];
      await waitFor(async () => {
        const rows = await admin.query<{ pid: number }>(
          "select pid from pg_stat_activity where datname = $1 and wait_event = 'PgSleep'",
          [dbName],
        );
        stalled = rows.rows.map((r) => r.pid);
        return stalled.length === 1;
      });
      await admin.query("select pg_terminate_backend($1)", [stalled[0]]);
      res = await call;
    } finally {
      await database.db.execute(sql`drop trigger test_stall_debit on pending_charges`);
    }

    // The killed statement committed nothing; its holds were looked up by their ids and run again.
    expect(res.status).toBe(200);
    expect(res.body.errors).toBeUndefined();
    expect(JSON.stringify(res.body)).not.toMatch(/terminat|sql|pending_charges|select|insert/i);
    expect(await balance(database.db, sub)).toBe(10 - res.body.extensions!.credits.charges[0].cost);
    expect((await ledgerKinds(database.db, sub)).filter((k) => k === "DEBIT")).toHaveLength(1);
    expect(await pendingCount(database.db, sub)).toBe(0);
    const before = await balance(database.db, sub);

    const next = await server.gql(RUN_AI, { sub }, { token });
    expect(next.status).toBe(200);
    expect(await balance(database.db, sub)).toBe(before - next.body.extensions!.credits.charges[0].cost);
    expect((await auditLedger(database.db)).ok).toBe(true);
  });
});
