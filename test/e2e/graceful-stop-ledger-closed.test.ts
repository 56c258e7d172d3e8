/**
 * A hold asked after the credits core closed (the server stopping): LedgerClosedError. An outside
 * audit saw requests accepted at the end of the drain reach their hold after the ledger closed, and
 * each was reported as a database failure (a FAILED_TRANSACTION alert, an error line
 * `credits.transaction_failed`, a webhook post) though the database was healthy.
 *
 * The HTTP server now waits for running requests before the credits core closes; a request still
 * running past that bound is the only one that can meet a closed ledger (here: one whose
 * Idempotency-Key claim waits on a table lock until the stop is over). Its hold is refused as the
 * stop it is: a warning `credits.hold_refused_stopping`, no alert, nothing held or charged.
 */
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { sql } from "drizzle-orm";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp, type App } from "../../src/app/create-app.js";
import { loadConfig } from "../../src/config/config.js";
import { queryRows } from "../../src/db/database.js";
import { auditLedger } from "../../src/ledger/audit.js";
import { createLogger } from "../../src/observability/logger.js";
import { createPostgresDatabase, type TestDatabase } from "../helpers/databases.js";
import { ledgerState } from "../helpers/ledger-state.js";
import { captureLogLines } from "../helpers/log-lines.js";
import { postgresAvailable } from "../helpers/services.js";
import { fundedSubscription, userToken } from "../helpers/test-app.js";

const SEARCH = `mutation($s: ID!) { searchLeads(subscriptionId: $s, input: { query: "x", limit: 2 }) { leads { name } } }`;

/** Waits until a captured log line passes `match`. */
async function logged(lines: Record<string, any>[], match: (line: Record<string, any>) => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!lines.some(match)) {
    if (Date.now() > deadline) throw new Error(`never logged: ${what}\n${lines.map((l) => JSON.stringify(l)).join("\n")}`);
    await sleep(20);
  }
}

/** Whether anything answers on `url`'s port. */
async function listening(url: string): Promise<boolean> {
  try {
    await fetch(`${url}/health`, { headers: { connection: "close" } }).then((res) => res.text());
    return true;
  } catch {
    return false;
  }
}

describe.skipIf(!postgresAvailable)("a hold asked after the credits core closed", () => {
  let database: TestDatabase;
  let locker: pg.Client;

  beforeAll(async () => {
    database = await createPostgresDatabase(4);
    locker = new pg.Client({ connectionString: database.url });
    await locker.connect();
  }, 60_000);
  afterAll(async () => {
    await locker?.end().catch(() => undefined);
    await database?.dispose();
  });

  it("is a warning, not a database failure: no FAILED_TRANSACTION alert, no transaction_failed line, nothing charged", async () => {
    const captured = captureLogLines();
    const config = loadConfig({ PGLITE_DIR: "memory://", LOG_LEVEL: "info", NODE_ENV: "test", REQUEST_LIMIT: "1000000/1m" });
    const app: App = await createApp(config, { database, logger: createLogger(config.LOG_LEVEL, captured.destination) });
    const url = await app.listen(0, "127.0.0.1");
    const subscriptionId = await fundedSubscription(database, "ledger-closed-owner", { leads: 100 });

    // Idempotency-Key claims wait until the test lets them: the request below stops before its hold.
    await locker.query("begin");
    await locker.query("lock table idempotency_keys in exclusive mode");
    const call = fetch(`${url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${await userToken("ledger-closed-owner")}`, "idempotency-key": randomUUID() },
      body: JSON.stringify({ query: SEARCH, variables: { s: subscriptionId } }),
    }).then(
      (res) => res.status,
      () => 0,
    );
    const waiting = async () =>
      Number((await queryRows<{ n: number }>(database.db, sql`select count(*)::int as n from pg_locks where relation = 'idempotency_keys'::regclass and not granted`))[0].n);
    for (const deadline = Date.now() + 10_000; (await waiting()) === 0; await sleep(20)) {
      if (Date.now() > deadline) throw new Error("the claim never waited on the lock");
    }

    const stopped = app.close({ graceMs: 100, quietMs: 50, finishMs: 200 });
    // The server stops listening when the grace ends; the running requests' bound (finishMs) passes,
    // then the credits core closes (its ledger first): only then does the claim go on, to its hold.
    for (const deadline = Date.now() + 20_000; await listening(url); await sleep(20)) {
      if (Date.now() > deadline) throw new Error("the server never stopped listening");
    }
    await sleep(500);
    await locker.query("rollback");
    await logged(
      captured.lines,
      (l) => l.event === "credits.hold_refused_stopping" || l.event === "credits.transaction_failed",
      "the hold after the stop",
    );
    await stopped;
    await call;
    await sleep(200);

    expect(captured.lines.filter((l) => l.event === "credits.transaction_failed")).toEqual([]);
    const refused = captured.lines.filter((l) => l.event === "credits.hold_refused_stopping");
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ level: 40, requestId: expect.any(String) });
    expect(captured.lines.filter((l) => l.level >= 50).map((l) => l.msg)).toEqual([]);
    const alerts = await queryRows<{ n: number }>(database.db, sql`select count(*)::int as n from credit_alerts where kind = 'FAILED_TRANSACTION'`);
    expect(Number(alerts[0].n)).toBe(0);
    // Nothing held, nothing charged, and the key released (a retry on another instance runs afresh).
    expect(await ledgerState(database, subscriptionId)).toMatchObject({ balances: { leads: 100 }, entries: 1 });
    const pending = await queryRows<{ n: number }>(database.db, sql`select count(*)::int as n from pending_charges`);
    expect(Number(pending[0].n)).toBe(0);
    const keys = await queryRows<{ n: number }>(database.db, sql`select count(*)::int as n from idempotency_keys`);
    expect(Number(keys[0].n)).toBe(0);
    expect(await auditLedger(database.db)).toMatchObject({ ok: true, mismatches: [] });
  }, 60_000);
});
