/**
 * A settlement cut off by a lost connection is tried again after short pauses, so a successful call
 * is not later refunded by the recovery pass; whether a failed attempt committed or not, the answer
 * is right.
 */
import { sql } from "drizzle-orm";
import { holdOne, voidHold } from "../helpers/ledger-commands.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows, type Database } from "../../src/db/database.js";
import { createSettlementBatcher, type SettlementBatcher } from "../../src/ledger/settlement-batcher.js";
import type { SettlementOutcome } from "../../src/ledger/settle.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { fundedSubscription } from "../helpers/test-app.js";
import { awayFor } from "../helpers/unreachable-database.js";
import { captureLogLines } from "../helpers/log-lines.js";
import { createLogger } from "../../src/observability/logger.js";

/**
 * The real database, but its first `failures` statements fail: before running (`before`) or after
 * committing (`after`), as a connection lost on the way there or on the way back.
 */
function flaky(db: Database, when: "before" | "after", failures = 1): Database {
  let failed = 0;
  return new Proxy(db, {
    get(target, prop, receiver) {
      if (prop !== "execute") return Reflect.get(target, prop, receiver);
      return async (query: unknown) => {
        if (failed < failures && when === "before") {
          failed++;
          throw Object.assign(new Error("Connection terminated unexpectedly"), { code: "57P01" });
        }
        const result = await (target.execute as (q: unknown) => Promise<unknown>)(query);
        if (failed < failures) {
          failed++;
          throw new Error("Connection terminated unexpectedly");
        }
        return result;
      };
    },
  });
}

/** Posts one hold through the batcher; true when it was still pending. */
async function postWith(batcher: SettlementBatcher, subscriptionId: string, entryId: string): Promise<boolean> {
  const [outcome] = await batcher.settle([{ kind: "post", subscriptionId, entryId, actorId: null, requestId: null }]);
  return outcome.settled;
}

const QUICK_RETRIES = { retryDelaysMs: [1, 1, 1, 1] };

describe.each(BACKENDS)("settlement after a lost connection on %s", (backend) => {
  let database: TestDatabase;
  let subscriptionId: string;

  beforeAll(async () => {
    database = await createTestDatabase(backend);
    subscriptionId = await fundedSubscription(database, "settle-owner", { ai: 100 });
  });
  afterAll(() => database?.dispose());

  async function pendingDebit(): Promise<string> {
    const outcome = await holdOne(database.db, {
      subscriptionId,
      creditType: "ai",
      amount: 1,
      operation: "Mutation.runAiTask",
      estimated: 1,
      actorId: "settle-owner",
      adminOverride: false,
      requestId: "settle-test",
    });
    if (!outcome.ok) throw new Error("debit refused");
    return outcome.entryId;
  }

  const pendingCount = async () =>
    Number((await queryRows<{ n: string | number }>(database.db, sql`select count(*) as n from pending_charges`))[0].n);

  it.each(["before", "after"] as const)("a statement lost %s it ran is retried and the charge is settled", async (when) => {
    const entryId = await pendingDebit();
    const batcher = createSettlementBatcher(flaky(database.db, when));
    expect(await postWith(batcher, subscriptionId, entryId)).toBe(true);
    expect(await pendingCount()).toBe(0);
  });

  it.each(["before", "after"] as const)("four statements in a row lost %s they ran: the fifth settles the charge", async (when) => {
    const entryId = await pendingDebit();
    const batcher = createSettlementBatcher(flaky(database.db, when, 4), QUICK_RETRIES);
    expect(await postWith(batcher, subscriptionId, entryId)).toBe(true);
    expect(await pendingCount()).toBe(0);
  });

  it("a database away for 3 s (as while it restarts) does not make a successful call free: the settle waits for it", async () => {
    const entryId = await pendingDebit();
    const batcher = createSettlementBatcher(awayFor(database.db, 3_000));
    expect(await postWith(batcher, subscriptionId, entryId)).toBe(true);
    expect(await pendingCount()).toBe(0);
  });

  it("when every attempt fails, the settle rejects and the charge stays pending for the recovery pass", async () => {
    const entryId = await pendingDebit();
    const batcher = createSettlementBatcher(flaky(database.db, "before", 5), QUICK_RETRIES);
    await expect(postWith(batcher, subscriptionId, entryId)).rejects.toThrow(/Connection terminated/);
    expect(await pendingCount()).toBe(1);
    // The next settle of the same charge (on a database that answers) finds it still pending.
    expect(await postWith(createSettlementBatcher(database.db), subscriptionId, entryId)).toBe(true);
    expect(await pendingCount()).toBe(0);
  });

  /** A pending debit of 3 credits, and the settlement that releases 2 of them (the call cost 1). */
  async function releasingSettlement() {
    const outcome = await holdOne(database.db, {
      subscriptionId,
      creditType: "ai",
      amount: 3,
      operation: "Mutation.runAiTask",
      estimated: 3,
      actorId: "settle-owner",
      adminOverride: false,
      requestId: "settle-late",
    });
    if (!outcome.ok) throw new Error("debit refused");
    return { kind: "release" as const, subscriptionId, entryId: outcome.entryId, amount: 2, actorId: null, requestId: "settle-late" };
  }

  const returnsOf = (entryId: string) =>
    queryRows<{ kind: string; amount: number }>(database.db, sql`select kind, amount from credit_ledger where refund_of = ${entryId}::uuid order by created_at`);

  async function eventually(check: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > until) throw new Error("timed out");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  it("a settlement that failed every retry is written in the background once the database answers: the call costs what it measured, not nothing", async () => {
    // Found by an outside audit: a database away for longer than the retries left the hold pending
    // until CHARGE_SETTLE_TIMEOUT (an hour), then the recovery pass refunded a delivered result whole.
    const settlement = await releasingSettlement();
    const batcher = createSettlementBatcher(flaky(database.db, "before", 6), { ...QUICK_RETRIES, laterDelaysMs: [20, 20, 20] });
    const late: SettlementOutcome[][] = [];
    await expect(batcher.settle([settlement], { whenSettledLate: (outcomes) => late.push(outcomes) })).rejects.toThrow(/Connection terminated/);
    expect(batcher.waitingToSettle).toBe(1);
    // The first background attempt fails too (the sixth failure); the second writes it.
    await eventually(async () => batcher.waitingToSettle === 0);
    expect(await returnsOf(settlement.entryId)).toEqual([{ kind: "RELEASE", amount: 2 }]);
    expect(await pendingCount()).toBe(0);
    // Told once, as a settlement in time is answered: what came back, and the balance after it.
    expect(late).toEqual([[{ settled: true, returned: 2, balanceAfter: expect.any(Number) }]]);
  });

  // Found by an outside audit: a late settlement reached the ledger but not the charge observer
  // (no per-call log line, missing from the cost and released metrics).
  it("each operation of a batch written late hears its own outcomes; one whose callback throws keeps no other from hearing", async () => {
    const first = await releasingSettlement();
    const second = await releasingSettlement();
    const { lines, destination } = captureLogLines();
    const batcher = createSettlementBatcher(flaky(database.db, "before", 5), { ...QUICK_RETRIES, laterDelaysMs: [20], logger: createLogger("info", destination) });
    const heard: SettlementOutcome[][] = [];
    // Submitted in the same turn: one batch, one statement.
    const settles = [
      batcher.settle([first], {
        whenSettledLate: () => {
          throw new Error("observer failed");
        },
      }),
      batcher.settle([second], { whenSettledLate: (outcomes) => heard.push(outcomes) }),
    ];
    for (const settle of settles) await expect(settle).rejects.toThrow(/Connection terminated/);
    expect(batcher.waitingToSettle).toBe(2);
    await eventually(async () => batcher.waitingToSettle === 0);
    expect(heard).toEqual([[{ settled: true, returned: 2, balanceAfter: expect.any(Number) }]]);
    expect(await returnsOf(first.entryId)).toEqual([{ kind: "RELEASE", amount: 2 }]);
    expect(await returnsOf(second.entryId)).toEqual([{ kind: "RELEASE", amount: 2 }]);
    expect(lines.find((l) => l.event === "charge.settled_late")).toMatchObject({ holds: 2, refundedFirst: 0, attempts: 1 });
    expect(lines.find((l) => l.event === "charge.settled_late_report_failed")).toMatchObject({ level: 50, entryIds: [first.entryId] });
    // Not tried again: the settlement was written; only its report failed.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(lines.filter((l) => l.event === "charge.settled_late")).toHaveLength(1);
  });

  it("a late settlement does nothing to a hold the recovery pass refunded first", async () => {
    const settlement = await releasingSettlement();
    const { lines, destination } = captureLogLines();
    const logger = createLogger("info", destination);
    const batcher = createSettlementBatcher(flaky(database.db, "before", 5), { ...QUICK_RETRIES, laterDelaysMs: [300], logger });
    const late: SettlementOutcome[][] = [];
    await expect(batcher.settle([settlement], { whenSettledLate: (outcomes) => late.push(outcomes) })).rejects.toThrow(/Connection terminated/);
    await voidHold(database.db, { subscriptionId, entryId: settlement.entryId, reason: "recovery: unsettled charge", actorId: null, requestId: null });
    await eventually(async () => batcher.waitingToSettle === 0);
    expect(await returnsOf(settlement.entryId)).toEqual([{ kind: "REFUND", amount: 3 }]);
    // Told as not settled: the charge path reports it as a late success after a recovery refund
    // (observer.lateSettlement: `credits.late_settlement` per call), so the batch says only how many.
    expect(late).toEqual([[{ settled: false }]]);
    expect(lines.find((l) => l.event === "charge.settled_late")).toMatchObject({ holds: 1, refundedFirst: 1 });
    expect(lines.find((l) => l.event === "credits.late_settlement")).toBeUndefined();
  });

  it("a late attempt that committed but lost its answer is not taken for a recovery refund", async () => {
    const settlement = await releasingSettlement();
    const { lines, destination } = captureLogLines();
    // Five statements lost after committing nothing (they fail before), then one lost after it committed.
    let calls = 0;
    const db = new Proxy(database.db, {
      get(target, prop, receiver) {
        if (prop !== "execute") return Reflect.get(target, prop, receiver);
        return async (query: unknown) => {
          calls++;
          if (calls <= 5) throw Object.assign(new Error("Connection terminated unexpectedly"), { code: "57P01" });
          const result = await (target.execute as (q: unknown) => Promise<unknown>)(query);
          if (calls === 6) throw new Error("Connection terminated unexpectedly");
          return result;
        };
      },
    });
    const batcher = createSettlementBatcher(db, { ...QUICK_RETRIES, laterDelaysMs: [20, 20], logger: createLogger("info", destination) });
    const late: SettlementOutcome[][] = [];
    await expect(batcher.settle([settlement], { whenSettledLate: (outcomes) => late.push(outcomes) })).rejects.toThrow(/Connection terminated/);
    await eventually(async () => batcher.waitingToSettle === 0);
    expect(await returnsOf(settlement.entryId)).toEqual([{ kind: "RELEASE", amount: 2 }]);
    // Ours: settled (what it returned unknown, as after any answer lost), not refunded first.
    expect(late).toEqual([[{ settled: true }]]);
    expect(lines.find((l) => l.event === "charge.settled_late")).toMatchObject({ refundedFirst: 0, attempts: 2 });
  });

  it("close() stops the background attempts and leaves the hold to the recovery pass", async () => {
    const settlement = await releasingSettlement();
    const batcher = createSettlementBatcher(flaky(database.db, "before", 5), { ...QUICK_RETRIES, laterDelaysMs: [200] });
    await expect(batcher.settle([settlement])).rejects.toThrow(/Connection terminated/);
    batcher.close();
    expect(batcher.waitingToSettle).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(await returnsOf(settlement.entryId)).toEqual([]);
    expect(await pendingCount()).toBe(1);
    await voidHold(database.db, { subscriptionId, entryId: settlement.entryId, reason: "test: clean up", actorId: null, requestId: null });
  });

  // A clean stop (createCredits' close(), through the ledger's) tries the waiting settlements once
  // more before it gives them up: the server's last recovery pass would otherwise refund, whole,
  // calls that succeeded and were delivered.
  it("flush() writes a settlement waiting in the background at once, before close() gives up the rest", async () => {
    const settlement = await releasingSettlement();
    // Its next background attempt would be a minute away.
    const batcher = createSettlementBatcher(flaky(database.db, "before", 5), { ...QUICK_RETRIES, laterDelaysMs: [60_000] });
    await expect(batcher.settle([settlement])).rejects.toThrow(/Connection terminated/);
    expect(batcher.waitingToSettle).toBe(1);
    await batcher.flush();
    batcher.close();
    expect(batcher.waitingToSettle).toBe(0);
    expect(await returnsOf(settlement.entryId)).toEqual([{ kind: "RELEASE", amount: 2 }]);
    expect(await pendingCount()).toBe(0);
  });

  it("a charge the recovery pass refunded meanwhile is still reported as not settled", async () => {
    const entryId = await pendingDebit();
    await voidHold(database.db, { subscriptionId, entryId, reason: "recovery: unsettled charge", actorId: null, requestId: null });
    const batcher = createSettlementBatcher(flaky(database.db, "before"));
    expect(await postWith(batcher, subscriptionId, entryId)).toBe(false);
  });
});
