/**
 * Storing an idempotent outcome that fails (PGlite and PostgreSQL): a lost connection is retried with
 * backoff and the result is kept; an outcome the database refuses (text jsonb cannot hold) completes
 * the key as not kept, so a retry gets BAD_USER_INPUT saying so, with the first call's charge, and
 * is not run or charged again. Releasing a claim that loses its connection is sent again, and so is a
 * claim whose answer was lost (its claim id tells its own committed row from another call's).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import type { Database } from "../../src/db/database.js";
import type { ChargeRecord } from "../../src/credits/charge-collector.js";
import type { MeteredField } from "../../src/credits/metered-field.js";
import type { RequestContext } from "../../src/graphql/context.js";
import { createDatabaseIdempotencyGate } from "../../src/idempotency/database-idempotency-gate.js";
import type { FirstClaim, ReplayClaim } from "../../src/idempotency/idempotency-gate.js";
import { createLogger } from "../../src/observability/logger.js";
import { fundedSubscription } from "../helpers/test-app.js";
import { holdOne, postHold } from "../helpers/ledger-commands.js";

const field = { coordinate: "Mutation.runAiTask" } as MeteredField;
const charge: ChargeRecord = {
  path: ["runAiTask"],
  operation: "Mutation.runAiTask",
  subscriptionId: "00000000-0000-4000-8000-000000000001",
  type: "ai",
  estimated: 2,
  charged: 2,
  actual: null,
  released: 0,
  refunded: 0,
  cost: 2,
  remaining: 8,
  entryId: "00000000-0000-4000-8000-000000000002",
  adminOverride: false,
  fallback: false,
};

function context(key: string): RequestContext {
  return { requestId: `req-${key}`, viewer: { id: "store-owner", isAdmin: false }, authError: undefined, idempotencyKey: key } as unknown as RequestContext;
}

/** The real database, whose next `failNext(n)` statements fail as a lost connection does. */
function losingConnections(db: Database): { db: Database; failNext(n: number): void } {
  let failures = 0;
  const proxy = new Proxy(db, {
    get(target, prop, receiver) {
      if (prop !== "execute") return Reflect.get(target, prop, receiver);
      return async (query: unknown) => {
        if (failures > 0) {
          failures--;
          throw Object.assign(new Error("Connection terminated unexpectedly"), { code: "57P01" });
        }
        return (target.execute as (q: unknown) => Promise<unknown>)(query);
      };
    },
  });
  return { db: proxy, failNext: (n) => (failures = n) };
}

/** The real database, whose next `loseNext(n)` statements run and commit, and then lose their answer. */
function losingAnswers(db: Database): { db: Database; loseNext(n: number): void } {
  let losses = 0;
  const proxy = new Proxy(db, {
    get(target, prop, receiver) {
      if (prop !== "execute") return Reflect.get(target, prop, receiver);
      return async (query: unknown) => {
        const result = await (target.execute as (q: unknown) => Promise<unknown>)(query);
        if (losses > 0) {
          losses--;
          throw new Error("Connection terminated unexpectedly");
        }
        return result;
      };
    },
  });
  return { db: proxy, loseNext: (n) => (losses = n) };
}

describe.each(BACKENDS)("storing idempotent outcomes that fail on %s", (backend) => {
  let database: TestDatabase;
  const logger = createLogger("silent");

  beforeAll(async () => {
    database = await createTestDatabase(backend);
  });
  afterAll(() => database?.dispose());

  const gate = (db: Database) => createDatabaseIdempotencyGate({ db, ttlMs: 3_600_000, staleAfterMs: 3_600_000, logger });

  it("a store that loses its connection twice is retried with backoff and the result is replayed", async () => {
    const flaky = losingConnections(database.db);
    const claim = (await gate(flaky.db).begin(field, { prompt: "a" }, context("lost-twice"), "runAiTask")) as FirstClaim;
    expect(claim.kind).toBe("first");
    flaky.failNext(2);
    await claim.complete({ output: "kept" }, charge);
    const replayed = (await gate(database.db).begin(field, { prompt: "a" }, context("lost-twice"), "runAiTask")) as ReplayClaim;
    expect(replayed).toMatchObject({ kind: "replay", result: { output: "kept" }, charge: { charged: 2 } });
    expect(replayed.error).toBeUndefined();
  });

  it("a release that loses its connection is sent again: the key is free for the caller's retry at once", async () => {
    const flaky = losingConnections(database.db);
    const claim = (await gate(flaky.db).begin(field, { prompt: "c" }, context("release-lost"), "runAiTask")) as FirstClaim;
    expect(claim.kind).toBe("first");
    // The call was refused (or failed) before it held: its claim is given back, over a connection that dies twice.
    flaky.failNext(2);
    await claim.abandon();
    const retry = await gate(database.db).begin(field, { prompt: "c" }, context("release-lost-retry"), "runAiTask");
    expect(retry?.kind).toBe("first");
  });

  it("a claim whose answer is lost after it committed is sent again and is still this call's claim; another call's is not", async () => {
    const flaky = losingAnswers(database.db);
    flaky.loseNext(1);
    const claim = await gate(flaky.db).begin(field, { prompt: "d" }, context("claim-lost"), "runAiTask");
    // Before the claim id, the call failed with a 500 and its own committed claim answered CONFLICT.
    expect(claim?.kind).toBe("first");
    await expect(gate(database.db).begin(field, { prompt: "d" }, context("claim-lost"), "runAiTask")).rejects.toMatchObject({
      extensions: { code: "CONFLICT" },
    });
    await (claim as FirstClaim).complete({ output: "once" }, charge);
    const replayed = (await gate(database.db).begin(field, { prompt: "d" }, context("claim-lost"), "runAiTask")) as ReplayClaim;
    expect(replayed).toMatchObject({ kind: "replay", result: { output: "once" } });
  });

  it("a call settled after its outcome could not be stored: retries get CONFLICT while it holds, then BAD_USER_INPUT, not CONFLICT until the key expires", async () => {
    // Found by an outside audit: the database away as a call ended, both the outcome and its
    // not-kept record failed, the settlement was written later in the background, and every retry
    // answered 409 "still being processed" for a call long finished.
    const subscriptionId = await fundedSubscription(database, "store-owner", { ai: 10 });
    const ctx = context("settled-unrecorded");
    const claim = (await gate(database.db).begin(field, { prompt: "c" }, ctx, "runAiTask")) as FirstClaim;
    expect(claim.kind).toBe("first");
    const hold = await holdOne(database.db, {
      subscriptionId,
      creditType: "ai",
      amount: 2,
      operation: "Mutation.runAiTask",
      estimated: 2,
      actorId: "store-owner",
      adminOverride: false,
      requestId: ctx.requestId,
    });
    if (!hold.ok) throw new Error("hold refused");
    const retry = () => gate(database.db).begin(field, { prompt: "c" }, ctx, "runAiTask");
    // Still holding: the call may be running.
    await expect(retry()).rejects.toMatchObject({ extensions: { code: "CONFLICT" } });
    // Settled, the outcome never stored (claim.complete never ran): finished, charged once, not kept.
    expect(await postHold(database.db, subscriptionId, hold.entryId)).toBe(true);
    await expect(retry()).rejects.toMatchObject({
      extensions: { code: "BAD_USER_INPUT" },
      message: expect.stringMatching(/could not be stored, so it was not kept: it ran and was charged once/),
    });
  });

  it("a result the database refuses completes the key as not kept: a retry gets BAD_USER_INPUT and is not run", async () => {
    const claim = (await gate(database.db).begin(field, { prompt: "b" }, context("refused"), "runAiTask")) as FirstClaim;
    expect(claim.kind).toBe("first");
    // jsonb cannot hold the NUL character: the store statement is refused for its data.
    await claim.complete({ output: "nul \u0000 inside" }, charge);
    const retry = (await gate(database.db).begin(field, { prompt: "b" }, context("refused"), "runAiTask")) as ReplayClaim;
    expect(retry.kind).toBe("replay");
    expect(retry.charge).toMatchObject({ charged: 2 });
    expect(retry.error?.extensions.code).toBe("BAD_USER_INPUT");
    expect(retry.error?.message).toMatch(/could not be stored, so it was not kept/);
  });
});
