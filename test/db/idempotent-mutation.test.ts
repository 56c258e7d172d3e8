/**
 * idempotentMutation (src/admin/idempotent-mutation.ts) on PGlite and PostgreSQL, below HTTP, for the
 * paths a client cannot steer: a call whose claim is taken over while it runs rolls its change back
 * (the taker's run stands), a PENDING key left by a crashed call is taken over once stale and runs
 * once, a replay returns the stored value with its Dates revived, and a write whose connection is
 * lost (before its commit, or with its commit's answer) answers its caller as if nothing happened,
 * applied once.
 */
import { sql } from "drizzle-orm";
import { buildSchema, graphql, type GraphQLResolveInfo } from "graphql";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { idempotentMutation } from "../../src/admin/idempotent-mutation.js";
import { queryRows, type DbOrTx } from "../../src/db/database.js";
import type { RequestContext } from "../../src/graphql/context.js";
import { claimKey } from "../../src/idempotency/idempotency-store.js";
import { requestHash } from "../../src/idempotency/request-hash.js";
import { changeBalance } from "../../src/ledger/change-balance.js";
import { createLogger } from "../../src/observability/logger.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { fundedSubscription } from "../helpers/test-app.js";

const ADMIN = "mutation-admin";
const schema = buildSchema(`
  type Query { ok: Boolean }
  type Mutation { grant(subscriptionId: ID!, amount: Int!): String }
`);

describe.each(BACKENDS)("idempotentMutation on %s", (backend) => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase(backend);
  });
  afterAll(() => database?.dispose());

  function context(key: string, settleTimeoutMs = 60_000): RequestContext {
    return {
      services: { db: database.db, config: { IDEMPOTENCY_TTL: 3_600_000, CHARGE_SETTLE_TIMEOUT: settleTimeoutMs } },
      viewer: { id: ADMIN, isAdmin: true },
      authError: undefined,
      idempotencyKey: key,
      logger: createLogger("silent"),
    } as unknown as RequestContext;
  }

  /** Runs `mutation { grant(…) }` whose resolver wraps `write` in idempotentMutation. */
  async function run(ctx: RequestContext, subscriptionId: string, amount: number, write: (db: DbOrTx, info: GraphQLResolveInfo) => Promise<unknown>) {
    const outcomes: { replayed: boolean; value: unknown }[] = [];
    const rootValue = {
      grant: async (_args: unknown, c: RequestContext, info: GraphQLResolveInfo) => {
        const outcome = await idempotentMutation(c, info, (db) => write(db, info));
        outcomes.push(outcome);
        return "done";
      },
    };
    const result = await graphql({
      schema,
      source: `mutation ($s: ID!, $n: Int!) { grant(subscriptionId: $s, amount: $n) }`,
      rootValue,
      contextValue: ctx,
      variableValues: { s: subscriptionId, n: amount },
    });
    return { result, outcome: outcomes[0] };
  }

  const grant = (db: DbOrTx, subscriptionId: string, amount: number) =>
    changeBalance(db, { subscriptionId, creditType: "ai", kind: "GRANT", delta: amount, actorId: ADMIN, reason: "test", requestId: null });

  async function aiBalance(subscriptionId: string): Promise<number> {
    const rows = await queryRows<{ balance: number }>(
      database.db,
      sql`select balance from credit_balances where subscription_id = ${subscriptionId}::uuid and credit_type = 'ai'`,
    );
    return Number(rows[0].balance);
  }

  it("a call whose claim is taken over while it runs rolls its change back and answers CONFLICT", async () => {
    const sub = await fundedSubscription(database, "owner", { ai: 0 });
    const key = `taken-over-${Date.now()}`;
    const { result } = await run(context(key), sub, 5, async (db) => {
      await grant(db, sub, 5);
      // A retry takes the claim over (as after CHARGE_SETTLE_TIMEOUT): the claim's token changes. On
      // PostgreSQL from another connection, as it happens; PGlite has one connection, so there the
      // takeover goes through the transaction (and is rolled back with it).
      const taker = backend === "postgres" ? database.db : db;
      await taker.execute(sql`update idempotency_keys set created_at = created_at + interval '1 second' where key = ${key}`);
      return "granted";
    });
    expect(result.errors?.[0].extensions?.code).toBe("CONFLICT");
    expect(await aiBalance(sub)).toBe(0);
    if (backend === "postgres") {
      const rows = await queryRows<{ state: string }>(database.db, sql`select state from idempotency_keys where key = ${key}`);
      expect(rows).toEqual([{ state: "PENDING" }]); // the taker's claim stands, untouched by the release
    }
  });

  it("a PENDING key left by a crashed call is taken over once stale, and runs once", async () => {
    const sub = await fundedSubscription(database, "owner", { ai: 0 });
    const key = `crashed-${Date.now()}`;
    const claimedAt = new Date(Date.now() - 10_000);
    await claimKey(database.db, { actorId: ADMIN, key, fieldPath: "grant" }, {
      requestHash: requestHash("Mutation.grant", { subscriptionId: sub, amount: 4 }),
      now: claimedAt,
      expiresAt: new Date(Date.now() + 3_600_000),
      staleBefore: new Date(0),
    });

    const fresh = await run(context(key, 60_000), sub, 4, (db) => grant(db, sub, 4));
    expect(fresh.result.errors?.[0].extensions?.code).toBe("CONFLICT");

    const stale = await run(context(key, 5_000), sub, 4, (db) => grant(db, sub, 4));
    expect(stale.result.errors).toBeUndefined();
    const again = await run(context(key, 5_000), sub, 4, (db) => grant(db, sub, 4));
    expect(again.outcome.replayed).toBe(true);
    expect(await aiBalance(sub)).toBe(4);
  });

  it("replays the stored value with its Dates revived", async () => {
    const sub = await fundedSubscription(database, "owner", { ai: 0 });
    const key = `dates-${Date.now()}`;
    const at = new Date("2026-01-02T03:04:05.678Z");
    const write = async () => ({ at, nested: [{ when: at, n: 1 }], none: null });
    const first = await run(context(key), sub, 1, write);
    const second = await run(context(key), sub, 1, write);
    expect(first.outcome).toEqual({ replayed: false, value: { at, nested: [{ when: at, n: 1 }], none: null } });
    expect(second.outcome.replayed).toBe(true);
    expect(second.outcome.value).toEqual(first.outcome.value);
    expect((second.outcome.value as { at: Date }).at).toBeInstanceOf(Date);
  });

  /** The handle's transactions, but the first one's answer is lost after it committed (a connection killed as COMMIT returned). */
  function commitAnswerLostOnce(db: DbOrTx): DbOrTx {
    let lost = false;
    return new Proxy(db, {
      get(target, property, receiver) {
        if (property !== "transaction") return Reflect.get(target, property, receiver);
        return async (body: (tx: DbOrTx) => Promise<unknown>) => {
          const value = await (target as { transaction: (b: typeof body) => Promise<unknown> }).transaction(body);
          if (lost) return value;
          lost = true;
          throw new Error("Connection terminated unexpectedly");
        };
      },
    });
  }

  it("a write whose commit's answer is lost is found committed and answered with what it stored, applied once", async () => {
    const sub = await fundedSubscription(database, "owner", { ai: 0 });
    const key = `answer-lost-${Date.now()}`;
    const base = context(key);
    const ctx = { ...base, services: { ...base.services, db: commitAnswerLostOnce(database.db) } } as RequestContext;
    let runs = 0;
    const { result, outcome } = await run(ctx, sub, 6, async (db) => {
      runs++;
      await grant(db, sub, 6);
      return { granted: 6 };
    });
    expect(result.errors).toBeUndefined();
    expect(outcome).toEqual({ replayed: false, value: { granted: 6 } });
    expect(runs).toBe(1);
    expect(await aiBalance(sub)).toBe(6);
    const again = await run(context(key), sub, 6, async (db) => grant(db, sub, 6));
    expect(again.outcome).toEqual({ replayed: true, value: { granted: 6 } });
    expect(await aiBalance(sub)).toBe(6);
  });

  // PostgreSQL only: PGlite runs in process, with no connection to kill.
  if (backend === "postgres") it("a write whose backend is killed before it commits runs again under its key, applied once", async () => {
    const sub = await fundedSubscription(database, "owner", { ai: 0 });
    const key = `killed-${Date.now()}`;
    let runs = 0;
    const { result, outcome } = await run(context(key), sub, 7, async (db) => {
      runs++;
      await grant(db, sub, 7);
      // The first run's own backend is terminated inside its transaction, as pg_terminate_backend or a failover does.
      if (runs === 1) await db.execute(sql`select pg_terminate_backend(pg_backend_pid())`);
      return { granted: 7 };
    });
    expect(result.errors).toBeUndefined();
    expect(outcome).toEqual({ replayed: false, value: { granted: 7 } });
    expect(runs).toBe(2);
    expect(await aiBalance(sub)).toBe(7);
    const rows = await queryRows<{ state: string }>(database.db, sql`select state from idempotency_keys where key = ${key}`);
    expect(rows).toEqual([{ state: "DONE" }]);
  });
});
