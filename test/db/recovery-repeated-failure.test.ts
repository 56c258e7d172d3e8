/**
 * A hold whose recovery refund keeps failing, on PGlite and PostgreSQL: its first failure raises
 * FAILED_TRANSACTION (observer.transactionFailed) and an error log; its failures on later passes of the
 * same process are warn logs (recovery.refund_still_failing, with the attempts so far) and no alert,
 * until its refund succeeds and it is forgotten. A second stuck hold raises its own one alert.
 * The memory of failing holds is bounded: past its capacity the least recently failing is forgotten.
 */
import { Writable } from "node:stream";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { observerOf } from "../helpers/charge-observers.js";
import { holdOne } from "../helpers/ledger-commands.js";
import { fundedSubscription } from "../helpers/test-app.js";
import { queryRows, type Database } from "../../src/db/database.js";
import type { TransactionFailedEvent } from "../../src/credits/charge-observer.js";
import { auditLedger } from "../../src/ledger/audit.js";
import { createLogger } from "../../src/observability/logger.js";
import { runRecoveryPass } from "../../src/recovery/recovery-pass.js";
import { createRepeatedRefundFailures, type RepeatedRefundFailures } from "../../src/recovery/repeated-refund-failures.js";

const SETTLE_TIMEOUT_MS = 5 * 60_000;
/** A clock far enough ahead that every hold written now is overdue. */
const later = () => new Date(Date.now() + SETTLE_TIMEOUT_MS + 60_000);
const PINO_WARN = 40;
const PINO_ERROR = 50;

type LogLine = Record<string, unknown> & { level: number; event?: string };


function collectingLogger(lines: LogLine[]) {
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split("\n").filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return createLogger("info", sink);
}

async function hold(db: Database, subscriptionId: string): Promise<string> {
  const outcome = await holdOne(db, {
    subscriptionId,
    creditType: "ai",
    amount: 2,
    operation: "Mutation.runAiTask",
    estimated: 2,
    actorId: "stuck-owner",
    adminOverride: false,
    requestId: `req-${Math.random()}`,
  });
  if (!outcome.ok) throw new Error(`hold refused: ${JSON.stringify(outcome)}`);
  return outcome.entryId;
}

/** A test-only trigger makes the refund of these holds fail on the database, every time. */
async function refuseRefundsOf(db: Database, entryIds: string[]): Promise<void> {
  const list = entryIds.map((id) => `'${id}'::uuid`).join(", ");
  await db.execute(sql.raw(`
    create or replace function test_refuse_stuck_refund() returns trigger language plpgsql as $$
    begin
      if old.entry_id in (${list}) then raise exception 'simulated refund failure'; end if;
      return old;
    end $$`));
  await db.execute(sql`drop trigger if exists test_refuse_stuck_refund on pending_charges`);
  await db.execute(sql`create trigger test_refuse_stuck_refund before delete on pending_charges for each row execute function test_refuse_stuck_refund()`);
}

describe.each(BACKENDS)("a recovery refund that keeps failing, on %s", (backend) => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase(backend);
  });
  afterAll(() => database?.dispose());

  it("alerts once per stuck hold, then logs its later failures at warn, and forgets it once refunded", async () => {
    const db = database.db;
    const sub = await fundedSubscription(database, "stuck-owner", { ai: 20 });
    const failed: TransactionFailedEvent[] = [];
    const lines: LogLine[] = [];
    // As createCredits keeps it: one memory across the passes of the scheduler.
    const refundFailures: RepeatedRefundFailures = createRepeatedRefundFailures();
    const pass = () =>
      runRecoveryPass({
        db,
        settleTimeoutMs: SETTLE_TIMEOUT_MS,
        clock: later,
        logger: collectingLogger(lines),
        observer: observerOf({ transactionFailed: (e) => void failed.push(e) }),
        refundFailures,
      });
    const refundLines = (entryId: string) => lines.filter((l) => l.entryId === entryId && String(l.event).startsWith("recovery.refund"));

    const first = await hold(db, sub);
    await refuseRefundsOf(db, [first]);
    try {
      for (let i = 0; i < 3; i++) expect(await pass()).toMatchObject({ refunded: 0, failed: 1 });
      expect(failed.map((e) => [e.stage, e.entryId])).toEqual([["refund", first]]);
      expect(refundLines(first).map((l) => [l.level, l.event, l.attempts])).toEqual([
        [PINO_ERROR, "recovery.refund_failed", undefined],
        [PINO_WARN, "recovery.refund_still_failing", 2],
        [PINO_WARN, "recovery.refund_still_failing", 3],
      ]);
      // The pass summary is an error only on the pass that found a new failure.
      expect(lines.filter((l) => l.event === "recovery.pass").map((l) => [l.level, l.stillFailing])).toEqual([
        [PINO_ERROR, 0],
        [PINO_WARN, 1],
        [PINO_WARN, 1],
      ]);

      // A second hold stuck the same way is news of its own: one alert, while the first stays quiet.
      const second = await hold(db, sub);
      await refuseRefundsOf(db, [first, second]);
      expect(await pass()).toMatchObject({ refunded: 0, failed: 2, stillFailing: 1 });
      expect(failed.map((e) => e.entryId)).toEqual([first, second]);
      expect(refundLines(second).map((l) => [l.level, l.event])).toEqual([[PINO_ERROR, "recovery.refund_failed"]]);
      expect(refundLines(first).at(-1)).toMatchObject({ level: PINO_WARN, event: "recovery.refund_still_failing", attempts: 4 });
    } finally {
      await db.execute(sql`drop trigger test_refuse_stuck_refund on pending_charges`);
    }

    // Once the refunds go through, both holds are forgotten.
    expect(await pass()).toMatchObject({ refunded: 2, failed: 0, stillFailing: 0 });
    expect(refundFailures.size).toBe(0);
    const pending = await queryRows<{ n: number }>(db, sql`select count(*)::int as n from pending_charges where subscription_id = ${sub}::uuid`);
    expect(Number(pending[0].n)).toBe(0);
    expect(failed).toHaveLength(2);
    expect((await auditLedger(db)).ok).toBe(true);
  });
});

describe("the memory of failing refunds", () => {
  it("counts a hold's failures until it is forgotten, and then starts again", () => {
    const failures = createRepeatedRefundFailures();
    expect([failures.failed("a"), failures.failed("a"), failures.failed("b"), failures.failed("a")]).toEqual([1, 2, 1, 3]);
    failures.forget("a");
    expect(failures.failed("a")).toBe(1);
    expect(failures.size).toBe(2);
  });

  it("holds at most its capacity, forgetting the hold that failed least recently", () => {
    const failures = createRepeatedRefundFailures(2);
    failures.failed("a");
    failures.failed("b");
    failures.failed("a"); // a failed again: b is now the least recent
    failures.failed("c");
    expect(failures.size).toBe(2);
    expect(failures.failed("a")).toBe(3);
    expect(failures.failed("b")).toBe(1);
  });
});
