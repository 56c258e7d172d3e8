/**
 * Idempotency-Key claims bound to the instance lease their call holds under
 * (drizzle/0015_lease_bound_claims.sql), on PGlite and PostgreSQL:
 * - a call that died between claiming its key and holding no longer leaves the key answering
 *   CONFLICT until CHARGE_SETTLE_TIMEOUT: once its instance's lease has expired, a retry takes it over;
 * - while that call's hold stands, or while its lease lives, the retry still gets CONFLICT;
 * - a call whose lease changed before its hold is refused the hold (nothing held), and a hold under a
 *   lease the database finds expired is refused there and sent again under a new lease;
 * - on PostgreSQL, a takeover waits for a hold still running under the expired lease and then sees it.
 */
import { randomUUID } from "node:crypto";
import pg from "pg";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { fundedSubscription } from "../helpers/test-app.js";
import { queryRows, type Database } from "../../src/db/database.js";
import type { MeteredField } from "../../src/credits/metered-field.js";
import type { RequestContext } from "../../src/graphql/context.js";
import { createDatabaseIdempotencyGate } from "../../src/idempotency/database-idempotency-gate.js";
import type { FirstClaim } from "../../src/idempotency/idempotency-gate.js";
import { createCoalescingChargeLedger } from "../../src/ledger/coalescing-charge-ledger.js";
import { LeaseChangedError, type HoldRequest } from "../../src/ledger/hold.js";
import { auditLedger } from "../../src/ledger/audit.js";
import { createLogger } from "../../src/observability/logger.js";
import { startInstanceLease } from "../../src/recovery/instance-lease.js";
import { runRecoveryPass } from "../../src/recovery/recovery-pass.js";

const silent = createLogger("silent");
const HOUR = 3_600_000;
const OWNER = "claim-owner";
const field = { coordinate: "Mutation.runAiTask" } as MeteredField;

function context(key: string, requestId = `req-${randomUUID()}`): RequestContext {
  return { requestId, viewer: { id: OWNER, isAdmin: false }, authError: undefined, idempotencyKey: key } as unknown as RequestContext;
}

function holdOf(subscriptionId: string, requestId: string, requiredLease?: string): HoldRequest {
  return {
    subscriptionId,
    creditType: "ai",
    amount: 2,
    entryId: randomUUID(),
    operation: "Mutation.runAiTask",
    estimated: 2,
    actorId: OWNER,
    adminOverride: false,
    requestId,
    authorize: false,
    actorIsAdmin: false,
    requiredLease,
  };
}

async function newLease(db: Database): Promise<string> {
  const id = randomUUID();
  await db.execute(sql`insert into instance_leases (id, expires_at) values (${id}::uuid, now() + interval '1 hour')`);
  return id;
}

async function expire(db: Database, lease: string): Promise<void> {
  await db.execute(sql`update instance_leases set expires_at = now() - interval '1 second' where id = ${lease}::uuid`);
}

async function balanceOf(db: Database, subscriptionId: string): Promise<number> {
  const [row] = await queryRows<{ balance: number }>(
    db,
    sql`select balance from credit_balances where subscription_id = ${subscriptionId}::uuid and credit_type = 'ai'`,
  );
  return Number(row.balance);
}

describe.each(BACKENDS)("Idempotency-Key claims bound to the instance lease on %s", (backend) => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase(backend);
  });
  afterAll(() => database?.dispose());

  /** The gate of an instance holding `lease` (as src/library/create-credits.ts builds it). */
  const gateOf = (lease: string) =>
    createDatabaseIdempotencyGate({ db: database.db, ttlMs: 24 * HOUR, staleAfterMs: HOUR, logger: silent, instanceId: async () => lease });

  it("a call that died before holding: CONFLICT while its lease lives, taken over once it has expired", async () => {
    const db = database.db;
    const deadInstance = await newLease(db);
    const key = `died-before-hold-${randomUUID()}`;
    const first = (await gateOf(deadInstance).begin(field, { prompt: "a" }, context(key), "runAiTask")) as FirstClaim;
    expect(first).toMatchObject({ kind: "first", requiredLease: deadInstance });

    // The retry reaches another instance while the first one's lease still lives: it may still hold.
    const otherInstance = await newLease(db);
    await expect(gateOf(otherInstance).begin(field, { prompt: "a" }, context(key), "runAiTask")).rejects.toMatchObject({
      extensions: { code: "CONFLICT" },
    });

    // The first instance is gone: its lease expires and it held nothing, so the retry runs now
    // (before migration 0015 it answered CONFLICT until CHARGE_SETTLE_TIMEOUT, an hour).
    await expire(db, deadInstance);
    const retry = await gateOf(otherInstance).begin(field, { prompt: "a" }, context(key), "runAiTask");
    expect(retry).toMatchObject({ kind: "first", requiredLease: otherInstance });
  });

  it("a call whose hold stands keeps its key after its lease expired, until recovery refunds the hold", async () => {
    const db = database.db;
    const sub = await fundedSubscription(database, OWNER, { ai: 20 });
    const deadInstance = await newLease(db);
    const key = `held-then-died-${randomUUID()}`;
    const requestId = `req-${randomUUID()}`;
    const first = (await gateOf(deadInstance).begin(field, { prompt: "b" }, context(key, requestId), "runAiTask")) as FirstClaim;
    const ledger = createCoalescingChargeLedger(db, { instanceId: async () => deadInstance });
    const [held] = await ledger.hold([holdOf(sub, requestId, first.requiredLease)]);
    expect(held.ok).toBe(true);
    await ledger.idle();

    await expire(db, deadInstance);
    const otherInstance = await newLease(db);
    await expect(gateOf(otherInstance).begin(field, { prompt: "b" }, context(key), "runAiTask")).rejects.toMatchObject({
      extensions: { code: "CONFLICT" },
    });

    // Recovery refunds the dead instance's hold: nothing of the call stands, the retry runs.
    await runRecoveryPass({ db, settleTimeoutMs: HOUR, logger: silent });
    expect(await balanceOf(db, sub)).toBe(20);
    const retry = await gateOf(otherInstance).begin(field, { prompt: "b" }, context(key), "runAiTask");
    expect(retry).toMatchObject({ kind: "first" });
    expect((await auditLedger(db)).ok).toBe(true);
  });

  it("a call whose key was claimed under a lease the instance has since replaced is refused its hold; others in its batch are held", async () => {
    const db = database.db;
    const sub = await fundedSubscription(database, OWNER, { ai: 20 });
    const oldLease = await newLease(db);
    const currentLease = await newLease(db);
    const ledger = createCoalescingChargeLedger(db, { instanceId: async () => currentLease });
    const [bound, free] = await Promise.allSettled([
      ledger.hold([holdOf(sub, `req-${randomUUID()}`, oldLease)]),
      ledger.hold([holdOf(sub, `req-${randomUUID()}`)]),
    ]);
    await ledger.idle();
    expect(bound.status === "rejected" && bound.reason instanceof LeaseChangedError).toBe(true);
    expect(free.status === "fulfilled" && free.value[0].ok).toBe(true);
    expect(await balanceOf(db, sub)).toBe(18);
  });

  it("a hold under a lease the database finds expired is refused there, and held under a new lease", async () => {
    const db = database.db;
    const sub = await fundedSubscription(database, OWNER, { ai: 20 });
    const lease = startInstanceLease({ db, ttlMs: HOUR, logger: silent });
    const ledger = createCoalescingChargeLedger(db, { instanceId: () => lease.current(), leaseExpired: (id) => lease.expired(id) });
    try {
      const first = await lease.current();
      // Let the first renewal (due at once) finish too, so the next one is an hour away.
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await lease.current()).toBe(first);
      // Expired behind the instance's back: it still trusts its lease locally.
      await expire(db, first);
      const [held] = await ledger.hold([holdOf(sub, `req-${randomUUID()}`)]);
      expect(held.ok).toBe(true);
      const [mark] = await queryRows<{ instance_id: string }>(db, sql`select instance_id from pending_charges where subscription_id = ${sub}::uuid`);
      expect(mark.instance_id).not.toBe(first);
      expect(mark.instance_id).toBe(await lease.current());
      // Nothing was held under the expired lease.
      const underOld = await queryRows(db, sql`select 1 from pending_charges where instance_id = ${first}::uuid`);
      expect(underOld).toEqual([]);
    } finally {
      await ledger.idle();
      await lease.stop();
    }
  });
});

describe.runIf(BACKENDS.includes("postgres"))("a takeover racing a hold under the expired lease on postgres", () => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase("postgres");
  });
  afterAll(() => database?.dispose());

  it("waits for the hold still running under the lease, then sees its DEBIT and answers CONFLICT", async () => {
    const db = database.db;
    const sub = await fundedSubscription(database, OWNER, { ai: 20 });
    const lease = await newLease(db);
    const key = `race-${randomUUID()}`;
    const requestId = `req-${randomUUID()}`;
    const gate = (instance: string) =>
      createDatabaseIdempotencyGate({ db, ttlMs: 24 * HOUR, staleAfterMs: HOUR, logger: silent, instanceId: async () => instance });
    await gate(lease).begin(field, { prompt: "c" }, context(key, requestId), "runAiTask");

    // The dead call's hold statement, caught mid-flight: it passed the lease guard while the lease
    // lived and has not committed yet.
    const holder = new pg.Client({ connectionString: database.url });
    await holder.connect();
    try {
      await holder.query("begin");
      await holder.query("select credit_lease_guard($1::uuid)", [lease]);
      await expire(db, lease);

      const other = await newLease(db);
      let settled = false;
      const takeover = gate(other)
        .begin(field, { prompt: "c" }, context(key), "runAiTask")
        .finally(() => (settled = true));
      takeover.catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 300));
      // Without the lock it would have taken the key over already, before the DEBIT below.
      expect(settled).toBe(false);

      await holder.query(
        `select * from credit_hold(array[1], array[1], array[2], array[$1::uuid], array['Mutation.runAiTask'], array[2], array[$2],
                                   array[false], array[false], array[$3], array[false], array[$4::uuid], array['ai'], $5::uuid, false)`,
        [randomUUID(), OWNER, requestId, sub, lease],
      );
      await holder.query("commit");
      await expect(takeover).rejects.toMatchObject({ extensions: { code: "CONFLICT" } });
    } finally {
      await holder.end();
    }
    // A hold that comes after the takeover looked finds the lease expired and is refused.
    await expect(
      db.execute(sql`select credit_lease_guard(${lease}::uuid)`),
    ).rejects.toMatchObject({ cause: { code: "CL001" } });
  });
});
