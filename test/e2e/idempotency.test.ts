/**
 * Idempotency-Key over HTTP, on PGlite and PostgreSQL: a metered mutation sent with a key is charged
 * at most once; a retry replays the stored result and charge; a retry while the first runs is 409;
 * other arguments are 400; keys are per caller and per field path; expired and stale keys run again.
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { adminToken, fundedSubscription, postGraphQL, startTestServer, userToken, type TestServer } from "../helpers/test-app.js";
import { queryRows } from "../../src/db/database.js";
import { auditLedger } from "../../src/ledger/audit.js";
import { changeBalance } from "../../src/ledger/change-balance.js";
import { runLedgerCommand } from "../../src/ledger/charge-ledger.js";
import { loadConfig } from "../../src/config/config.js";
import { createApp } from "../../src/app/create-app.js";
import { createLogger } from "../../src/observability/logger.js";

const RUN_AI = `mutation Run($sub: ID!, $prompt: String!) {
  runAiTask(subscriptionId: $sub, input: { prompt: $prompt, maxTokens: 16 }) { output tokensUsed }
}`;

const RUN_TWO = `mutation RunTwo($sub: ID!) {
  first: runAiTask(subscriptionId: $sub, input: { prompt: "one", maxTokens: 16 }) { output }
  second: runAiTask(subscriptionId: $sub, input: { prompt: "two", maxTokens: 16 }) { output }
}`;

interface LedgerRow {
  kind: string;
  amount: number;
  refund_of: string | null;
}

async function ledgerOf(database: TestDatabase, subscriptionId: string): Promise<LedgerRow[]> {
  const rows = await queryRows<LedgerRow>(
    database.db,
    sql`select kind, amount, refund_of from credit_ledger where subscription_id = ${subscriptionId}::uuid order by seq`,
  );
  return rows.map((r) => ({ ...r, amount: Number(r.amount) }));
}

async function balanceOf(database: TestDatabase, subscriptionId: string): Promise<number> {
  const rows = await queryRows<{ balance: number }>(
    database.db,
    sql`select balance from credit_balances where subscription_id = ${subscriptionId}::uuid and credit_type = 'ai'`,
  );
  return Number(rows[0].balance);
}

const key = (() => {
  let n = 0;
  return (label: string) => `${label}-${Date.now()}-${++n}`;
})();

describe.each(BACKENDS)("Idempotency-Key on %s", (backend) => {
  let database: TestDatabase;
  let server: TestServer;
  let ownerToken: string;

  beforeAll(async () => {
    database = await createTestDatabase(backend);
    server = await startTestServer({
      database,
      env: { SIMULATE_FAILURES: "1", SIMULATE_SLOW_MS: "800", RATE_LIMIT_DEFAULT: "10000/1m" },
    });
    ownerToken = await userToken("idem-owner");
  });
  afterAll(async () => {
    await server?.close();
    await database?.dispose();
  });

  const run = (sub: string, idempotencyKey: string | undefined, options: { prompt?: string; token?: string; headers?: Record<string, string> } = {}) =>
    server.gql(RUN_AI, { sub, prompt: options.prompt ?? "hello" }, {
      token: options.token ?? ownerToken,
      headers: { ...(idempotencyKey === undefined ? {} : { "idempotency-key": idempotencyKey }), ...(options.headers ?? {}) },
    });

  it("a retry replays the result and the original charge with replayed: true and charges nothing", async () => {
    const sub = await fundedSubscription(database, "idem-owner", { ai: 10 });
    const k = key("replay");
    const first = await run(sub, k);
    expect(first.status).toBe(200);
    const charge = first.body.extensions!.credits.charges[0];
    expect(charge).toMatchObject({ charged: 1, refunded: 0, remaining: 9 });
    expect(charge.replayed).toBeUndefined();

    const retry = await run(sub, k);
    expect(retry.status).toBe(200);
    expect(retry.body.data).toEqual(first.body.data);
    const replayed = retry.body.extensions!.credits.charges[0];
    expect(replayed).toEqual({ ...charge, replayed: true });

    expect((await ledgerOf(database, sub)).filter((e) => e.kind === "DEBIT")).toHaveLength(1);
    expect(await balanceOf(database, sub)).toBe(9);
  });

  it("a replay reports the charge as the ledger has it now, keys in DESIGN.md's order (a refund since the first call counts)", async () => {
    // Found by an outside audit: after a crash, the recovery pass refunded a call whose outcome was
    // already stored, and every retry replayed "cost 18" for a debit the ledger had refunded whole.
    // An admin's refund since the first call is the same case without the crash.
    const sub = await fundedSubscription(database, "idem-owner", { ai: 10 });
    const k = key("refunded-since");
    const first = await run(sub, k);
    const charge = first.body.extensions!.credits.charges[0];
    expect(charge).toMatchObject({ charged: 1, cost: 1, refunded: 0 });
    const refund = await server.gql(
      `mutation($id: ID!) { refundCharge(input: { entryId: $id, reason: "goodwill" }) { amount } }`,
      { id: charge.entryId },
      { token: await adminToken() },
    );
    expect(refund.body.data.refundCharge.amount).toBe(1);

    const retry = await run(sub, k);
    const replayed = retry.body.extensions!.credits.charges[0];
    expect(replayed).toMatchObject({ charged: 1, released: 0, refunded: 1, cost: 0, replayed: true, entryId: charge.entryId });
    // The balance as it is now, refund included, as `remaining` says after every request (an outside
    // audit found the replay still showing the balance the first call left, 9, beside refunded: 1).
    expect(replayed.remaining).toBe(10);
    expect(retry.body.extensions!.credits.remaining).toEqual({ [sub]: { ai: 10 } });
    expect(Object.keys(replayed)).toEqual([...Object.keys(charge), "replayed"]);
    expect(Object.keys(charge)).toEqual([
      "path", "operation", "subscriptionId", "type", "estimated", "charged", "actual", "released", "refunded", "cost", "remaining", "entryId", "adminOverride", "fallback",
    ]);
    expect(await balanceOf(database, sub)).toBe(10);
  });

  it("concurrent duplicates: exactly one runs, the others get CONFLICT (409) and nothing is charged twice", async () => {
    const sub = await fundedSubscription(database, "idem-owner", { ai: 10 });
    const k = key("concurrent");
    const responses = await Promise.all(
      Array.from({ length: 5 }, () => run(sub, k, { headers: { "x-simulate-failure": "slow" } })),
    );
    const statuses = responses.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 409, 409, 409, 409]);
    for (const conflict of responses.filter((r) => r.status === 409)) {
      expect(conflict.body.errors![0].extensions.code).toBe("CONFLICT");
      expect(conflict.body.extensions?.credits?.charges ?? []).toEqual([]);
    }
    expect((await ledgerOf(database, sub)).filter((e) => e.kind === "DEBIT")).toHaveLength(1);
    expect(await balanceOf(database, sub)).toBe(9);

    // Once the first has finished, the same key replays.
    const retry = await run(sub, k);
    expect(retry.status).toBe(200);
    expect(retry.body.extensions!.credits.charges[0].replayed).toBe(true);
  });

  it("the same arguments written differently (field order, inline or variables) are the same request", async () => {
    const sub = await fundedSubscription(database, "idem-owner", { ai: 10 });
    const k = key("canonical");
    const headers = { "idempotency-key": k };
    const first = await server.gql(RUN_AI, { sub, prompt: "same" }, { token: ownerToken, headers });
    const inline = await server.gql(
      `mutation { runAiTask(input: { maxTokens: 16, prompt: "same" }, subscriptionId: "${sub}") { output tokensUsed } }`,
      {},
      { token: ownerToken, headers },
    );
    expect(inline.status).toBe(200);
    expect(inline.body.data).toEqual(first.body.data);
    expect(inline.body.extensions!.credits.charges[0].replayed).toBe(true);
    expect(await balanceOf(database, sub)).toBe(9);
  });

  it("the same key with other arguments is BAD_USER_INPUT (400) and charges nothing", async () => {
    const sub = await fundedSubscription(database, "idem-owner", { ai: 10 });
    const k = key("args");
    expect((await run(sub, k, { prompt: "first prompt" })).status).toBe(200);
    const other = await run(sub, k, { prompt: "another prompt" });
    expect(other.status).toBe(400);
    expect(other.body.errors![0].extensions.code).toBe("BAD_USER_INPUT");
    expect(other.body.errors![0].message).toMatch(/Idempotency-Key/);
    expect(await balanceOf(database, sub)).toBe(9);
  });

  it("keys are per caller: another caller's identical key runs independently", async () => {
    const sub = await fundedSubscription(database, "idem-owner", { ai: 10 });
    const k = key("caller");
    const mine = await run(sub, k);
    const admins = await run(sub, k, { token: await adminToken("idem-admin") });
    expect(mine.status).toBe(200);
    expect(admins.status).toBe(200);
    expect(admins.body.extensions!.credits.charges[0].replayed).toBeUndefined();
    expect(admins.body.extensions!.credits.charges[0].entryId).not.toBe(mine.body.extensions!.credits.charges[0].entryId);
    expect(await balanceOf(database, sub)).toBe(8);
  });

  it("keys are per field path: two aliased fields under one key are charged and replayed separately", async () => {
    const sub = await fundedSubscription(database, "idem-owner", { ai: 10 });
    const k = key("paths");
    const headers = { "idempotency-key": k };
    const first = await server.gql(RUN_TWO, { sub }, { token: ownerToken, headers });
    expect(first.status).toBe(200);
    const charges = first.body.extensions!.credits.charges;
    expect(charges.map((c: { path: string[] }) => c.path)).toEqual([["first"], ["second"]]);

    const retry = await server.gql(RUN_TWO, { sub }, { token: ownerToken, headers });
    expect(retry.body.data).toEqual(first.body.data);
    const replayed = retry.body.extensions!.credits.charges;
    expect(replayed.map((c: { entryId: string }) => c.entryId)).toEqual(charges.map((c: { entryId: string }) => c.entryId));
    expect(replayed.every((c: { replayed?: boolean }) => c.replayed === true)).toBe(true);
    expect(await balanceOf(database, sub)).toBe(8);
  });

  it("an expired key runs again", async () => {
    const sub = await fundedSubscription(database, "idem-owner", { ai: 10 });
    const k = key("expired");
    expect((await run(sub, k)).status).toBe(200);
    await database.db.execute(sql`update idempotency_keys set expires_at = now() - interval '1 second' where key = ${k}`);
    const again = await run(sub, k);
    expect(again.status).toBe(200);
    expect(again.body.extensions!.credits.charges[0].replayed).toBeUndefined();
    expect(await balanceOf(database, sub)).toBe(8);
  });

  it("a PENDING key older than CHARGE_SETTLE_TIMEOUT (its process died) does not block: the call runs", async () => {
    const sub = await fundedSubscription(database, "idem-owner", { ai: 10 });
    const k = key("stale");
    await database.db.execute(
      sql`insert into idempotency_keys (actor_id, key, field_path, request_hash, state, created_at, expires_at)
          values ('idem-owner', ${k}, 'runAiTask', 'hash-of-a-dead-request', 'PENDING', now() - interval '61 minutes', now() + interval '1 day')`,
    );
    const res = await run(sub, k);
    expect(res.status).toBe(200);
    expect(res.body.extensions!.credits.charges[0].replayed).toBeUndefined();
    const rows = await queryRows<{ state: string }>(database.db, sql`select state from idempotency_keys where key = ${k}`);
    expect(rows).toEqual([{ state: "DONE" }]);
  });

  it("a stale PENDING key whose charge still stands is not taken over (no second DEBIT: the result was not kept); once that charge is refunded it is", async () => {
    const sub = await fundedSubscription(database, "idem-owner", { ai: 10 });
    const k = key("stale-charged");
    expect((await run(sub, k)).status).toBe(200);
    // As if its outcome had never been stored: the key is left PENDING, past CHARGE_SETTLE_TIMEOUT, its DEBIT standing.
    await database.db.execute(
      sql`update idempotency_keys set state = 'PENDING', result = null, charge = null, created_at = now() - interval '61 minutes'
           where key = ${k}`,
    );
    const retry = await run(sub, k);
    // The old code took the key over and ran the call again: a second DEBIT for one key. Its call
    // has finished (its DEBIT is settled, not pending): the retry is told the result was not kept,
    // not CONFLICT, which it got until the key expired before this round's eleventh session.
    expect(retry.status).toBe(400);
    expect(retry.body.errors![0].extensions.code).toBe("BAD_USER_INPUT");
    expect(retry.body.errors![0].message).toMatch(/could not be stored, so it was not kept: it ran and was charged once/);
    const debits = await queryRows<{ id: string }>(database.db, sql`select id from credit_ledger where subscription_id = ${sub}::uuid and kind = 'DEBIT'`);
    expect(debits).toHaveLength(1);
    expect(await balanceOf(database, sub)).toBe(9);

    // Once that charge is refunded whole, the key is taken over: the retry runs and is charged once.
    const refunded = await runLedgerCommand(database.db, {
      kind: "refund",
      request: { entryId: debits[0].id, amount: undefined, actorId: "admin", reason: "test: refunded", requestId: "req-test-refund" },
    });
    expect(refunded.ok).toBe(true);
    expect(await balanceOf(database, sub)).toBe(10);
    const after = await run(sub, k);
    expect(after.status).toBe(200);
    expect(after.body.extensions!.credits.charges[0].replayed).toBeUndefined();
    expect((await ledgerOf(database, sub)).filter((e) => e.kind === "DEBIT")).toHaveLength(2);
    expect(await balanceOf(database, sub)).toBe(9);
  });

  it("a fresh PENDING key whose hold was refunded (its process died, recovery refunded it) is taken over at once", async () => {
    const sub = await fundedSubscription(database, "idem-owner", { ai: 10 });
    const k = key("crashed");
    expect((await run(sub, k)).status).toBe(200);
    // As a process killed after its hold leaves it: the key PENDING and young, its DEBIT refunded by
    // the recovery pass seconds later (once the dead instance's lease expired).
    const [debit] = await queryRows<{ id: string }>(database.db, sql`select id from credit_ledger where subscription_id = ${sub}::uuid and kind = 'DEBIT'`);
    await database.db.execute(sql`update idempotency_keys set state = 'PENDING', result = null, charge = null where key = ${k}`);
    const refunded = await runLedgerCommand(database.db, {
      kind: "refund",
      request: { entryId: debit.id, amount: undefined, actorId: "recovery", reason: "test: its instance died", requestId: "req-test-recovery" },
    });
    expect(refunded.ok).toBe(true);
    // The old code answered CONFLICT until the key was CHARGE_SETTLE_TIMEOUT (1 h) old.
    const retry = await run(sub, k);
    expect(retry.status).toBe(200);
    expect(retry.body.extensions!.credits.charges[0].replayed).toBeUndefined();
    expect((await ledgerOf(database, sub)).filter((e) => e.kind === "DEBIT")).toHaveLength(2);
    expect(await balanceOf(database, sub)).toBe(9);
  });

  it("a refunded debit of an earlier request that carried the same x-request-id does not free a newer claim", async () => {
    const sub = await fundedSubscription(database, "idem-owner", { ai: 10 });
    const k = key("reused-request-id");
    const requestId = `reused-${k}`;
    expect((await run(sub, k)).status).toBe(200);
    // An earlier call without the key but with this (caller-chosen) request id, refunded.
    const failed = await run(sub, undefined, { headers: { "x-request-id": requestId, "x-simulate-failure": "system" } });
    expect(failed.body.extensions!.credits.charges[0].refunded).toBeGreaterThan(0);
    // The key claimed since by a call that carries the same request id and has not held yet.
    await database.db.execute(
      sql`update idempotency_keys set state = 'PENDING', result = null, charge = null, request_id = ${requestId}, created_at = now() + interval '1 second'
           where key = ${k}`,
    );
    const duplicate = await run(sub, k);
    expect(duplicate.status).toBe(409);
    expect(duplicate.body.errors![0].extensions.code).toBe("CONFLICT");
  });

  it("a fresh PENDING key from another request answers CONFLICT", async () => {
    const sub = await fundedSubscription(database, "idem-owner", { ai: 10 });
    const k = key("fresh-pending");
    const slow = run(sub, k, { headers: { "x-simulate-failure": "slow" } });
    await waitFor(async () => (await queryRows(database.db, sql`select 1 from idempotency_keys where key = ${k}`)).length === 1);
    const conflict = await run(sub, k);
    expect(conflict.status).toBe(409);
    expect((await slow).status).toBe(200);
  });

  it("after a system error (refunded) the key is released and a retry runs and is charged once", async () => {
    const sub = await fundedSubscription(database, "idem-owner", { ai: 10 });
    const k = key("system");
    const failed = await run(sub, k, { headers: { "x-simulate-failure": "system" } });
    expect(failed.status).toBe(500);
    expect(failed.body.errors![0].extensions.code).toBe("INTERNAL_SERVER_ERROR");
    expect(failed.body.extensions!.credits.charges[0]).toMatchObject({ charged: 1, refunded: 1, remaining: 10 });

    const retry = await run(sub, k);
    expect(retry.status).toBe(200);
    expect(retry.body.extensions!.credits.charges[0].replayed).toBeUndefined();
    expect((await ledgerOf(database, sub)).map((e) => e.kind)).toEqual(["GRANT", "DEBIT", "REFUND", "DEBIT"]);
    expect(await balanceOf(database, sub)).toBe(9);
  });

  it("after a user-input error (charge kept) a retry replays the same error and charge without paying again", async () => {
    const sub = await fundedSubscription(database, "idem-owner", { ai: 10 });
    const k = key("input");
    const failed = await run(sub, k, { headers: { "x-simulate-failure": "input" } });
    expect(failed.status).toBe(400);
    expect(failed.body.errors![0].extensions.code).toBe("BAD_USER_INPUT");
    const charge = failed.body.extensions!.credits.charges[0];
    expect(charge).toMatchObject({ charged: 1, refunded: 0 });

    const retry = await run(sub, k);
    expect(retry.status).toBe(400);
    expect(retry.body.errors![0].message).toBe(failed.body.errors![0].message);
    expect(retry.body.errors![0].extensions.code).toBe("BAD_USER_INPUT");
    expect(retry.body.errors![0].path).toEqual(["runAiTask"]);
    expect(retry.body.extensions!.credits.charges[0]).toEqual({ ...charge, replayed: true });
    expect((await ledgerOf(database, sub)).map((e) => e.kind)).toEqual(["GRANT", "DEBIT"]);
    expect(await balanceOf(database, sub)).toBe(9);
  });

  it("a call refused before the debit (insufficient credits) leaves the key free for a retry", async () => {
    const sub = await fundedSubscription(database, "idem-owner", { ai: 0 });
    const k = key("refused");
    const refused = await run(sub, k);
    expect(refused.status).toBe(402);
    await changeBalance(database.db, {
      subscriptionId: sub,
      creditType: "ai",
      kind: "GRANT",
      delta: 5,
      actorId: "test-setup",
      reason: "top-up",
      requestId: null,
    });
    const retry = await run(sub, k);
    expect(retry.status).toBe(200);
    expect(retry.body.extensions!.credits.charges[0]).toMatchObject({ charged: 1, remaining: 4 });
    expect(retry.body.extensions!.credits.charges[0].replayed).toBeUndefined();
  });

  it("malformed keys are BAD_USER_INPUT (400) and charge nothing", async () => {
    const sub = await fundedSubscription(database, "idem-owner", { ai: 10 });
    for (const bad of ["", "x".repeat(256), "tab\there"]) {
      const res = await run(sub, bad);
      expect(res.status, JSON.stringify(bad)).toBe(400);
      expect(res.body.errors![0].extensions.code).toBe("BAD_USER_INPUT");
      expect(res.body.errors![0].message).toMatch(/Idempotency-Key/);
    }
    expect((await run(sub, "k".repeat(255))).status).toBe(200);
    expect(await balanceOf(database, sub)).toBe(9);
  });

  it("without the header nothing is stored", async () => {
    const sub = await fundedSubscription(database, "idem-owner", { ai: 10 });
    const before = await queryRows<{ n: number }>(database.db, sql`select count(*)::int as n from idempotency_keys`);
    expect((await run(sub, undefined)).status).toBe(200);
    expect((await run(sub, undefined)).status).toBe(200);
    const after = await queryRows<{ n: number }>(database.db, sql`select count(*)::int as n from idempotency_keys`);
    expect(Number(after[0].n)).toBe(Number(before[0].n));
    expect(await balanceOf(database, sub)).toBe(8);
  });

  it("the ledger audit stays clean", async () => {
    expect((await auditLedger(database.db)).ok).toBe(true);
  });
});

describe("Idempotency-Key expiry with an injected clock", () => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase("pglite");
  });
  afterAll(() => database?.dispose());

  it("a key is replayed within IDEMPOTENCY_TTL and runs again once the clock passes it", async () => {
    let now = Date.now();
    const config = loadConfig({ NODE_ENV: "test", LOG_LEVEL: "silent", IDEMPOTENCY_TTL: "1h", PGLITE_DIR: "memory://" });
    const app = await createApp(config, { database, logger: createLogger("silent"), clock: () => new Date(now) });
    try {
      const url = await app.listen(0, "127.0.0.1");
      const sub = await fundedSubscription(database, "clock-owner", { ai: 10 });
      const token = await userToken("clock-owner");
      const call = () => postGraphQL(`${url}/graphql`, RUN_AI, { sub, prompt: "tick" }, { token, headers: { "idempotency-key": "clock-key" } });

      expect((await call()).body.extensions!.credits.charges[0].replayed).toBeUndefined();
      now += 59 * 60_000;
      expect((await call()).body.extensions!.credits.charges[0].replayed).toBe(true);
      now += 2 * 60_000;
      const after = await call();
      expect(after.status).toBe(200);
      expect(after.body.extensions!.credits.charges[0].replayed).toBeUndefined();
      expect(after.body.extensions!.credits.charges[0].remaining).toBe(8);
    } finally {
      await app.close();
    }
  });
});

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe.each(BACKENDS)("Idempotency-Key replays are bounded on %s (issue 15, item 9)", (backend) => {
  let database: TestDatabase;
  let server: TestServer;

  beforeAll(async () => {
    database = await createTestDatabase(backend);
    server = await startTestServer({ database, env: { RATE_LIMIT_DEFAULT: "3/1m", IDEMPOTENCY_MAX_RESULT_BYTES: "1000" } });
  });
  afterAll(async () => {
    await server?.close();
    await database?.dispose();
  });

  it("a replay counts against the field's rate limit like a call", async () => {
    const token = await userToken("replay-limited");
    const sub = await fundedSubscription(database, "replay-limited", { ai: 10 });
    const k = `replay-limit-${backend}`;
    const send = () => server.gql(RUN_AI, { sub, prompt: "hello" }, { token, headers: { "idempotency-key": k } });
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await send()).status);
    // The call and two replays fit the limit of 3; the third replay is refused like a fourth call.
    expect(statuses).toEqual([200, 200, 200, 429]);
    expect((await ledgerOf(database, sub)).filter((e) => e.kind === "DEBIT")).toHaveLength(1);
  });

  it("a result larger than IDEMPOTENCY_MAX_RESULT_BYTES is not stored: its retry is BAD_USER_INPUT and charges nothing", async () => {
    const token = await userToken("replay-large");
    const sub = await fundedSubscription(database, "replay-large", { leads: 500 });
    const search = `mutation($sub: ID!) { searchLeads(subscriptionId: $sub, input: { query: "roofers 0", limit: 200 }) { leads { name company email phone city } } }`;
    const send = () => server.gql(search, { sub }, { token, headers: { "idempotency-key": `large-${backend}` } });
    const first = await send();
    expect(first.status).toBe(200);
    expect(JSON.stringify(first.body.data).length).toBeGreaterThan(1000);
    const balance = (await queryRows<{ balance: number }>(database.db, sql`select balance from credit_balances where subscription_id = ${sub}::uuid and credit_type = 'leads'`))[0].balance;
    const retry = await send();
    expect(retry.status).toBe(400);
    expect(retry.body.errors![0].extensions.code).toBe("BAD_USER_INPUT");
    expect(retry.body.errors![0].message).toMatch(/more than the 1000 kept for replay/);
    expect(retry.body.extensions!.credits.charges[0]).toMatchObject({ replayed: true, cost: first.body.extensions!.credits.charges[0].cost });
    const after = (await queryRows<{ balance: number }>(database.db, sql`select balance from credit_balances where subscription_id = ${sub}::uuid and credit_type = 'leads'`))[0].balance;
    expect(Number(after)).toBe(Number(balance));
    expect(await auditLedger(database.db)).toMatchObject({ ok: true });
  });
});
