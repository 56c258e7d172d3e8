/**
 * Reports (creditUsage, creditStats, ledgerAudit) are bounded (src/db/report-gate.ts). An outside
 * audit ran 20 slow creditUsage at once: they held every pooled connection for minutes, so metered
 * calls hung, /health said the database was down and the instance lost its lease; and the queries
 * went on in PostgreSQL long after their requests had ended.
 *
 * Here reports are made slow without anything slow in product code: a separate session holds
 * `LOCK TABLE credit_ledger IN ACCESS EXCLUSIVE MODE`, which every report (and every charge) waits
 * for. While it is held:
 *  - with twice the pool's size of reports sent at once, only the gate's share of them reaches the
 *    database, /health answers up, a metered call gets a connection (its hold waits on the lock
 *    beside the reports, not for the pool), and once the lock goes the call completes; the reports
 *    past the gate's queue are refused with RATE_LIMITED and retryAfterSeconds;
 *  - a report blocked past REPORT_QUERY_TIMEOUT answers BAD_USER_INPUT ("narrow the window"),
 *    ledgerAudit INTERNAL_SERVER_ERROR after ten times that, and their statements are gone from
 *    pg_stat_activity.
 * And creditUsage over a short window reads the returns of that window's debits only, not every
 * return of the subscription (EXPLAIN ANALYZE of the very query that runs).
 * On PGlite (one connection, no statement timer) reports, an audit and a metered call sent together
 * all complete: the gate does not deadlock on a single connection.
 */
import { PgDialect } from "drizzle-orm/pg-core";
import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { ReportGate, reportSlots, REPORT_QUEUE_PER_SLOT } from "../../src/db/report-gate.js";
import { usageQuery } from "../../src/ledger/usage.js";
import { createPostgresDatabase, type TestDatabase } from "../helpers/databases.js";
import { postgresAvailable } from "../helpers/services.js";
import { adminToken, fundedSubscription, startTestServer, userToken, type GraphQLResponse, type TestServer } from "../helpers/test-app.js";

const POOL = 8;
const SLOTS = reportSlots("postgres", POOL);
const QUEUE = SLOTS * REPORT_QUEUE_PER_SLOT;

const USAGE = `query($s: ID!, $from: DateTimeISO) { creditUsage(subscriptionId: $s, groupBy: OPERATION, from: $from) { key calls credits } }`;
const STATS = `query($from: DateTimeISO) { creditStats(groupBy: TYPE, from: $from) { key calls } }`;
const AUDIT = `query { ledgerAudit { ok checkedBalances } }`;
const RUN_AI = `mutation($s: ID!) { runAiTask(subscriptionId: $s, input: { prompt: "hello", maxTokens: 100 }) { tokensUsed } }`;
const A_YEAR_AGO = new Date(Date.now() - 365 * 86_400_000).toISOString();

/** Report statements (the usage query, the audit's) of the test database, as pg_stat_activity shows them (not this query itself). */
const REPORT_STATEMENT = `(query ilike '%with refunds as%' or query ilike '%with sums as%') and pid <> pg_backend_pid()`;

/** Settles within `ms` or fails the test: a report that never answers would otherwise hang it. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

describe.skipIf(!postgresAvailable)("report bounds on PostgreSQL", () => {
  let database: TestDatabase;
  let observer: pg.Client;
  let locker: pg.Client | undefined;
  let subscription: string;
  let owner: string;
  let admin: string;

  /** Backends of the test database waiting on a lock, by what they run. */
  async function waiting(): Promise<{ reports: number; holds: number }> {
    const { rows } = await observer.query(
      `select count(*) filter (where ${REPORT_STATEMENT})::int as reports, count(*) filter (where query ilike '%credit_hold(%')::int as holds
         from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and pid <> pg_backend_pid()`,
    );
    return rows[0];
  }

  /** Report statements of the test database still running or waiting. */
  async function activeReports(): Promise<number> {
    const { rows } = await observer.query(
      `select count(*)::int as n from pg_stat_activity where datname = current_database() and state = 'active' and ${REPORT_STATEMENT}`,
    );
    return rows[0].n;
  }

  /** A session holding the ledger in ACCESS EXCLUSIVE mode until release(): every report waits for it. */
  async function lockLedger(): Promise<void> {
    locker = new pg.Client({ connectionString: database.url });
    await locker.connect();
    await locker.query("begin");
    await locker.query("lock table credit_ledger in access exclusive mode");
  }
  async function releaseLedger(): Promise<void> {
    const client = locker;
    locker = undefined;
    if (!client) return;
    await client.query("commit");
    await client.end();
  }

  beforeAll(async () => {
    database = await createPostgresDatabase(POOL);
    observer = new pg.Client({ connectionString: database.url });
    await observer.connect();
    subscription = await fundedSubscription(database, "owner-1", { ai: 1_000 });
    owner = await userToken("owner-1");
    admin = await adminToken();
  });
  // A failed assertion must not leave the ledger locked for the next case.
  afterEach(releaseLedger);
  afterAll(async () => {
    await releaseLedger();
    await observer?.end();
    await database?.dispose();
  });

  describe("while reports wait on the ledger", () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startTestServer({
        database,
        // The recovery pass is kept out of the way: it reads the ledger too.
        env: { DATABASE_POOL_SIZE: String(POOL), REPORT_QUERY_TIMEOUT: "5m", RECOVERY_INTERVAL: "1h" },
      });
    });
    afterAll(async () => {
      await releaseLedger();
      await server?.close();
    });

    it("take at most the gate's share of the pool: /health answers and a metered call gets a connection and completes", async () => {
      await lockLedger();
      const reports = Array.from({ length: 2 * POOL }, () => server.gql(USAGE, { s: subscription, from: A_YEAR_AGO }, { token: owner }));
      await vi.waitFor(async () => expect((await waiting()).reports).toBeGreaterThanOrEqual(SLOTS), { timeout: 15_000, interval: 50 });

      // Before the gate every connection was a report's, waiting: the ping found none (503, "down").
      const health = await fetch(`${server.url}/health`);
      expect([health.status, (await health.json()).database]).toEqual([200, "up"]);

      const metered = server.gql(RUN_AI, { s: subscription }, { token: owner });
      // The call's hold reached the database (it waits on the same lock): it had a connection.
      await vi.waitFor(async () => expect((await waiting()).holds).toBe(1), { timeout: 15_000, interval: 50 });
      expect((await waiting()).reports).toBe(SLOTS);

      await releaseLedger();
      const charged = await within(metered, 30_000, "the metered call");
      expect(charged.body.errors).toBeUndefined();
      expect(charged.body.data.runAiTask.tokensUsed).toBeGreaterThan(0);

      const answers = await within(Promise.all(reports), 30_000, "the reports");
      const refused = answers.filter((r) => r.body.errors?.[0]?.extensions.code === "RATE_LIMITED");
      const answered = answers.filter((r) => r.body.errors === undefined && Array.isArray(r.body.data?.creditUsage));
      // SLOTS ran, QUEUE waited their turn, the rest were refused at once.
      expect([answered.length, refused.length]).toEqual([SLOTS + QUEUE, 2 * POOL - SLOTS - QUEUE]);
      for (const r of refused) {
        expect(r.status).toBe(429);
        expect(r.body.errors![0].extensions.retryAfterSeconds).toBeGreaterThanOrEqual(1);
        expect(r.body.errors![0].message).toMatch(/Too many reports .* try again in \d+ s/);
      }
    });
  });

  describe("past REPORT_QUERY_TIMEOUT", () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startTestServer({
        database,
        env: { DATABASE_POOL_SIZE: String(POOL), REPORT_QUERY_TIMEOUT: "500ms", RECOVERY_INTERVAL: "1h" },
      });
    });
    afterAll(async () => {
      await releaseLedger();
      await server?.close();
    });

    /** The single error of a response, as a client reads it. */
    const onlyError = (response: GraphQLResponse) => {
      expect(response.body.errors).toHaveLength(1);
      const [error] = response.body.errors!;
      return { status: response.status, code: error.extensions.code, field: error.extensions.field, message: error.message };
    };

    it("a blocked creditUsage or creditStats answers BAD_USER_INPUT (narrow the window) and its statement is cancelled", async () => {
      await lockLedger();
      const usage = await within(server.gql(USAGE, { s: subscription, from: A_YEAR_AGO }, { token: owner }), 20_000, "creditUsage");
      expect(onlyError(usage)).toEqual({
        status: 400,
        code: "BAD_USER_INPUT",
        field: "from",
        message: "creditUsage did not finish within 500 ms: narrow the window (from, to), or try again when the server is less busy",
      });
      expect(await activeReports()).toBe(0);

      const stats = await within(server.gql(STATS, { from: A_YEAR_AGO }, { token: admin }), 20_000, "creditStats");
      expect(onlyError(stats)).toMatchObject({ status: 400, code: "BAD_USER_INPUT", message: expect.stringMatching(/^creditStats did not finish within 500 ms/) });
      expect(await activeReports()).toBe(0);

      await releaseLedger();
      // Its slot came back: the same report answers once nothing blocks it.
      const after = await server.gql(USAGE, { s: subscription, from: A_YEAR_AGO }, { token: owner });
      expect(after.body.errors).toBeUndefined();
    });

    it("a blocked ledgerAudit is cancelled after ten times REPORT_QUERY_TIMEOUT: INTERNAL_SERVER_ERROR, nothing left running", async () => {
      await lockLedger();
      const audit = await within(server.gql(AUDIT, {}, { token: admin }), 30_000, "ledgerAudit");
      expect(onlyError(audit)).toMatchObject({ status: 500, code: "INTERNAL_SERVER_ERROR" });
      expect(await activeReports()).toBe(0);
      await releaseLedger();
      expect((await server.gql(AUDIT, {}, { token: admin })).body.data.ledgerAudit.ok).toBe(true);
    });
  });

  describe("creditUsage over a short window", () => {
    it("reads the returns of the window's debits, not every return of the subscription", async () => {
      const busy = await fundedSubscription(database, "busy-owner", {});
      // 3,000 debits over 300 days, each released a second later: what the window holds is a day's.
      await observer.query(
        `insert into credit_ledger (subscription_id, credit_type, kind, amount, balance_after, operation, estimated, draws, created_at)
           select $1::uuid, 'ai', 'DEBIT', -5, 500, 'Mutation.runAiTask', 5, '[{"grantId":"00000000-0000-0000-0000-000000000000","amount":5}]'::jsonb,
                  now() - interval '300 days' + g * interval '8640 seconds'
             from generate_series(1, 3000) g;
         insert into credit_ledger (subscription_id, credit_type, kind, amount, balance_after, operation, refund_of, draws, created_at)
           select d.subscription_id, 'ai', 'RELEASE', 2, 500, d.operation, d.id,
                  '[{"grantId":"00000000-0000-0000-0000-000000000000","amount":2}]'::jsonb, d.created_at + interval '1 second'
             from credit_ledger d where d.subscription_id = $1::uuid and d.kind = 'DEBIT';
         analyze credit_ledger;`.replaceAll("$1", `'${busy}'`),
      );
      const from = new Date(Date.now() - 200 * 86_400_000);
      const request = { grouping: "OPERATION" as const, subscriptionId: busy, from, to: new Date(from.getTime() + 86_400_000) };
      const { sql: text, params } = new PgDialect().sqlToQuery(usageQuery(request));
      const { rows } = await observer.query(`explain (analyze, format json) ${text}`, params);
      const returnsRead = rowsReadAs("r", rows[0]["QUERY PLAN"][0].Plan);
      const [{ calls }] = (await observer.query(text, params)).rows;
      expect(Number(calls)).toBe(10);
      // One return per debit of the window; before, all 3,000 of the subscription were read and summed.
      expect(returnsRead).toBe(10);
    });
  });
});

interface PlanNode {
  Alias?: string;
  "Actual Rows": number;
  "Actual Loops": number;
  Plans?: PlanNode[];
}

/** Rows the plan's scans of `alias` returned, over all their loops. */
function rowsReadAs(alias: string, node: PlanNode): number {
  const own = node.Alias === alias ? node["Actual Rows"] * node["Actual Loops"] : 0;
  return own + (node.Plans ?? []).reduce((sum, child) => sum + rowsReadAs(alias, child), 0);
}

describe("reports on PGlite (one connection)", () => {
  let server: TestServer;
  let subscription: string;
  beforeAll(async () => {
    server = await startTestServer();
    subscription = await fundedSubscription(server.app.services.database, "pglite-owner", { ai: 1_000 });
  });
  afterAll(async () => {
    await server?.close();
  });

  it("reports, an audit and a metered call sent together all complete", async () => {
    const owner = await userToken("pglite-owner");
    const admin = await adminToken();
    const reports = Array.from({ length: 12 }, () => server.gql(USAGE, { s: subscription, from: A_YEAR_AGO }, { token: owner }));
    const audit = server.gql(AUDIT, {}, { token: admin });
    const metered = server.gql(RUN_AI, { s: subscription }, { token: owner });
    const [answers, audited, charged] = await within(Promise.all([Promise.all(reports), audit, metered]), 30_000, "PGlite");
    expect(charged.body.errors).toBeUndefined();
    for (const r of [...answers, audited]) {
      // Answered, or refused past the queue of the single slot: never stuck.
      if (r.body.errors) expect(r.body.errors[0].extensions.code).toBe("RATE_LIMITED");
    }
    expect(answers.some((r) => r.body.errors === undefined)).toBe(true);
  });
});

describe("the report gate", () => {
  const later = () => {
    let finish!: () => void;
    const done = new Promise<void>((resolve) => (finish = resolve));
    return { done, finish };
  };

  it("runs at most `slots` at once, queues `queueLength` more in order, refuses the rest with RATE_LIMITED", async () => {
    const gate = new ReportGate({ slots: 2, queueLength: 2, maxWaitMs: 60_000 });
    const started: number[] = [];
    const blockers = Array.from({ length: 4 }, later);
    const runs = blockers.map((b, i) => gate.run(async () => (started.push(i), await b.done, i)));
    const refused = gate.run(async () => "never");
    await expect(refused).rejects.toMatchObject({ extensions: { code: "RATE_LIMITED", retryAfterSeconds: 60 } });
    expect(started).toEqual([0, 1]);
    blockers[1].finish();
    await runs[1];
    expect(started).toEqual([0, 1, 2]);
    for (const b of blockers) b.finish();
    expect(await Promise.all(runs)).toEqual([0, 1, 2, 3]);
    // Every slot came back.
    expect(await Promise.all([gate.run(async () => "a"), gate.run(async () => "b")])).toEqual(["a", "b"]);
  });

  it("refuses a report that waited maxWaitMs for a slot, and a failing report frees its slot", async () => {
    const gate = new ReportGate({ slots: 1, queueLength: 5, maxWaitMs: 50 });
    const blocker = later();
    const running = gate.run(() => blocker.done);
    await expect(gate.run(async () => "late")).rejects.toMatchObject({ extensions: { code: "RATE_LIMITED", retryAfterSeconds: 1 } });
    blocker.finish();
    await running;
    await expect(gate.run(async () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    expect(await gate.run(async () => "free")).toBe("free");
  });

  it("sizes slots from the pool: a quarter, at least one; one on PGlite", () => {
    expect([reportSlots("postgres", 10), reportSlots("postgres", 3), reportSlots("postgres", 20), reportSlots("pglite", 10)]).toEqual([2, 1, 5, 1]);
  });
});
