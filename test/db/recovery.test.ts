/**
 * The recovery pass on PGlite and PostgreSQL: it refunds exactly the debits left pending longer than
 * CHARGE_SETTLE_TIMEOUT (judged by an injected clock), never refunds one twice even when passes race,
 * passes over a refund that fails and retries it next time, and purges expired idempotency keys.
 */
import { Writable } from "node:stream";
import { holdOne, postHold, voidHold } from "../helpers/ledger-commands.js";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { fundedSubscription } from "../helpers/test-app.js";
import { connectDatabase } from "../../src/db/connect.js";
import { queryRows, type Database, type DatabaseHandle } from "../../src/db/database.js";
import { auditLedger } from "../../src/ledger/audit.js";
import { createLogger } from "../../src/observability/logger.js";
import { RECOVERY_REFUND_REASON, runRecoveryPass, type RecoveryPassOptions } from "../../src/recovery/recovery-pass.js";

const SETTLE_TIMEOUT_MS = 5 * 60_000;
const silent = createLogger("silent");
/** A clock far enough ahead that every pending charge written now counts as unsettled. */
const later = () => new Date(Date.now() + SETTLE_TIMEOUT_MS + 60_000);

function pass(db: Database, overrides: Partial<RecoveryPassOptions> = {}) {
  return runRecoveryPass({ db, settleTimeoutMs: SETTLE_TIMEOUT_MS, logger: silent, clock: later, ...overrides });
}

async function debit(db: Database, subscriptionId: string, amount: number): Promise<string> {
  const outcome = await holdOne(db, {
    subscriptionId,
    creditType: "ai",
    amount,
    operation: "Mutation.runAiTask",
    estimated: amount,
    actorId: "recovery-owner",
    adminOverride: false,
    requestId: `req-${amount}-${Math.random()}`,
  });
  if (!outcome.ok) throw new Error(`debit refused: ${JSON.stringify(outcome)}`);
  return outcome.entryId;
}

async function balance(db: Database, subscriptionId: string): Promise<number> {
  const rows = await queryRows<{ balance: number }>(
    db,
    sql`select balance from credit_balances where subscription_id = ${subscriptionId}::uuid and credit_type = 'ai'`,
  );
  return Number(rows[0].balance);
}

async function pendingCount(db: Database, subscriptionId: string): Promise<number> {
  const rows = await queryRows<{ n: number }>(db, sql`select count(*)::int as n from pending_charges where subscription_id = ${subscriptionId}::uuid`);
  return Number(rows[0].n);
}

async function refundsPerDebit(db: Database, subscriptionId: string): Promise<number[]> {
  const rows = await queryRows<{ n: number }>(
    db,
    sql`select count(r.id)::int as n
          from credit_ledger d
          left join credit_ledger r on r.subscription_id = d.subscription_id and r.refund_of = d.id and r.kind = 'REFUND'
         where d.subscription_id = ${subscriptionId}::uuid and d.kind = 'DEBIT'
         group by d.id`,
  );
  return rows.map((r) => Number(r.n));
}

describe.each(BACKENDS)("recovery pass on %s", (backend) => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase(backend);
  });
  afterAll(() => database?.dispose());

  it("refunds exactly the debits unsettled for longer than CHARGE_SETTLE_TIMEOUT, once", async () => {
    const db = database.db;
    const sub = await fundedSubscription(database, "recovery-owner", { ai: 10 });
    const settled = await debit(db, sub, 1);
    const lost = [await debit(db, sub, 2), await debit(db, sub, 3)];
    expect(await postHold(db, sub, settled)).toBe(true);
    expect(await balance(db, sub)).toBe(4);

    // Still within the settle timeout: nothing is touched.
    const early = await pass(db, { clock: () => new Date() });
    expect(early.refunded).toBe(0);
    expect(await pendingCount(db, sub)).toBe(2);

    const report = await pass(db);
    expect(report).toMatchObject({ refunded: 2, refundedCredits: 5, failed: 0 });
    expect(await balance(db, sub)).toBe(9);
    expect(await pendingCount(db, sub)).toBe(0);
    const refunds = await queryRows<{ refund_of: string; amount: number; reason: string; actor_id: string | null }>(
      db,
      sql`select refund_of, amount, reason, actor_id from credit_ledger where subscription_id = ${sub}::uuid and kind = 'REFUND' order by amount`,
    );
    expect(refunds.map((r) => ({ ...r, amount: Number(r.amount) }))).toEqual([
      { refund_of: lost[0], amount: 2, reason: RECOVERY_REFUND_REASON, actor_id: null },
      { refund_of: lost[1], amount: 3, reason: RECOVERY_REFUND_REASON, actor_id: null },
    ]);

    // A late success after recovery finds nothing to settle (the wrapper reports it) and changes nothing.
    expect(await postHold(db, sub, lost[0])).toBe(false);
    expect((await pass(db)).refunded).toBe(0);
    expect(await balance(db, sub)).toBe(9);
    expect((await auditLedger(db)).ok).toBe(true);
  });

  it("passes racing on separate connections never refund a debit twice", async () => {
    const sub = await fundedSubscription(database, "recovery-owner", { ai: 1_000 });
    // PostgreSQL: a second pool, as a second server instance would have. PGlite has one connection.
    const other: DatabaseHandle =
      backend === "postgres" ? await connectDatabase({ databaseUrl: database.url!, poolSize: 4 }) : database;
    try {
      for (let round = 0; round < 3; round++) {
        const entries: string[] = [];
        for (let i = 0; i < 30; i++) entries.push(await debit(database.db, sub, 1 + (i % 3)));
        const reports = await Promise.all([
          pass(database.db, { batchSize: 7 }),
          pass(other.db, { batchSize: 7 }),
          pass(database.db, { batchSize: 11 }),
        ]);
        expect(reports.reduce((n, r) => n + r.refunded, 0)).toBe(30);
        expect(reports.reduce((n, r) => n + r.failed, 0)).toBe(0);
      }
      expect(await pendingCount(database.db, sub)).toBe(0);
      expect((await refundsPerDebit(database.db, sub)).every((n) => n === 1)).toBe(true);
      expect(await balance(database.db, sub)).toBe(1_000);
      expect((await auditLedger(database.db)).ok).toBe(true);
    } finally {
      if (other !== database) await other.close();
    }
  });

  it("works in batches, passes over a refund that fails, and the next pass retries it", async () => {
    const db = database.db;
    const sub = await fundedSubscription(database, "recovery-owner", { ai: 100 });
    const entries: string[] = [];
    for (let i = 0; i < 25; i++) entries.push(await debit(db, sub, 1));
    const stuck = entries[3];
    // A test-only trigger makes the refund of one charge fail on the database.
    await db.execute(sql.raw(`
      create or replace function test_refuse_pending_delete() returns trigger language plpgsql as $$
      begin
        if old.entry_id = '${stuck}'::uuid then raise exception 'simulated refund failure'; end if;
        return old;
      end $$`));
    await db.execute(sql`create trigger test_refuse_pending_delete before delete on pending_charges for each row execute function test_refuse_pending_delete()`);
    try {
      const first = await pass(db, { batchSize: 10 });
      expect(first).toMatchObject({ refunded: 24, failed: 1, batches: 3 });
      expect(await pendingCount(db, sub)).toBe(1);
      expect(await balance(db, sub)).toBe(99);
    } finally {
      await db.execute(sql`drop trigger test_refuse_pending_delete on pending_charges`);
    }
    const second = await pass(db, { batchSize: 10 });
    expect(second).toMatchObject({ refunded: 1, failed: 0 });
    expect(await balance(db, sub)).toBe(100);
    expect((await auditLedger(db)).ok).toBe(true);
  });

  it("logs each recovered refund and a summary of the pass", async () => {
    const db = database.db;
    const sub = await fundedSubscription(database, "recovery-owner", { ai: 10 });
    const entry = await debit(db, sub, 4);
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split("\n").filter(Boolean)) lines.push(JSON.parse(line));
        done();
      },
    });
    await pass(db, { logger: createLogger("info", sink) });
    const refunded = lines.find((l) => l.event === "recovery.refunded");
    expect(refunded).toMatchObject({ entryId: entry, subscriptionId: sub, refunded: 4, remaining: 10, operation: "Mutation.runAiTask" });
    expect(lines.find((l) => l.event === "recovery.pass")).toMatchObject({ refunded: 1, refundedCredits: 4, failed: 0 });
  });

  it("purges expired idempotency keys and keeps live ones", async () => {
    const db = database.db;
    await db.execute(sql`
      insert into idempotency_keys (actor_id, key, field_path, request_hash, state, expires_at) values
        ('purge-actor', 'old-1', 'runAiTask', 'h', 'DONE', now() - interval '1 minute'),
        ('purge-actor', 'old-2', 'runAiTask', 'h', 'PENDING', now() - interval '1 hour'),
        ('purge-actor', 'live', 'runAiTask', 'h', 'DONE', now() + interval '1 hour')`);
    const report = await pass(db, { clock: () => new Date() });
    expect(report.purgedIdempotencyKeys).toBe(2);
    const left = await queryRows<{ key: string }>(db, sql`select key from idempotency_keys where actor_id = 'purge-actor'`);
    expect(left).toEqual([{ key: "live" }]);
  });
});
