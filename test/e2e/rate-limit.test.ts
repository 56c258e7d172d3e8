/**
 * Rate limits over HTTP on the real server: exact under a burst on one instance (memory store) and
 * on two instances sharing Redis, aliases counted one call each, nothing charged for a refused call,
 * and a Redis outage answered per RATE_LIMIT_ON_STORE_ERROR.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditLedger } from "../../src/ledger/audit.js";
import { BACKENDS, createPostgresDatabase, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { postgresAvailable, redisAvailable, TEST_REDIS_URL } from "../helpers/services.js";
import { closedPort } from "../helpers/closed-port.js";
import { ledgerEntries, ledgerState } from "../helpers/ledger-state.js";
import { fundedSubscription, startTestServer, userToken, type GraphQLResponse, type TestServer } from "../helpers/test-app.js";

// One credit per call: ceil((ceil(2/4) + 10) / 1000) = 1.
const RUN_AI = `mutation($s: ID!) { runAiTask(subscriptionId: $s, input: { prompt: "hi", maxTokens: 10 }) { output } }`;

function countByStatus(responses: GraphQLResponse[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const r of responses) counts[r.status] = (counts[r.status] ?? 0) + 1;
  return counts;
}

function expectRateLimited(response: GraphQLResponse): void {
  expect(response.status).toBe(429);
  expect(response.body.errors).toHaveLength(1);
  const error = response.body.errors![0];
  expect(error.extensions).toMatchObject({ code: "RATE_LIMITED" });
  expect(error.extensions.retryAfterSeconds).toBeGreaterThanOrEqual(1);
  expect(error.extensions.retryAfterSeconds).toBeLessThanOrEqual(60);
  expect(response.headers.get("retry-after")).toBe(String(Math.ceil(error.extensions.retryAfterSeconds)));
  expect(error.message).toMatch(/^Too many calls to Mutation\.runAiTask: at most 10 per 1m; try again in \d+ s$/);
  // Refused before the debit: no charge reported.
  expect(response.body.extensions?.credits?.charges ?? []).toEqual([]);
}

/** 50 simultaneous calls against the default limit 10/1m: exactly 10 run and are charged one credit each. */
async function expectExactBurst(database: TestDatabase, servers: TestServer[], owner: string): Promise<void> {
  const subscriptionId = await fundedSubscription(database, owner, { ai: 1_000 });
  const token = await userToken(owner);
  const responses = await Promise.all(
    Array.from({ length: 50 }, (_, i) => servers[i % servers.length].gql(RUN_AI, { s: subscriptionId }, { token })),
  );
  expect(countByStatus(responses)).toEqual({ 200: 10, 429: 40 });
  for (const r of responses.filter((r) => r.status === 429)) expectRateLimited(r);
  for (const r of responses.filter((r) => r.status === 200)) {
    expect(r.body.extensions!.credits.charges).toEqual([expect.objectContaining({ operation: "Mutation.runAiTask", charged: 1 })]);
  }

  expect((await ledgerState(database, subscriptionId)).balances.ai).toBe(990);
  const debits = (await ledgerEntries(database, subscriptionId)).filter((e) => e.kind === "DEBIT");
  expect(debits).toHaveLength(10);
  expect(debits.reduce((sum, e) => sum + e.amount, 0)).toBe(-10);
  expect(await auditLedger(database.db)).toMatchObject({ ok: true });
}

describe.each(BACKENDS)("rate limits on one instance (memory store) on %s", (backend) => {
  let database: TestDatabase;
  let server: TestServer;

  beforeAll(async () => {
    database = await createTestDatabase(backend);
    server = await startTestServer({ database, env: { RATE_LIMIT_DEFAULT: "10/1m" } });
  });
  afterAll(async () => {
    await server?.close();
    await database?.dispose();
  });

  it("of 50 simultaneous calls against max 10, exactly 10 run; the balance moves by exactly 10 charges", async () => {
    await expectExactBurst(database, [server], "burst-user");
  });

  it("each alias of a metered field in one operation is one call, all admitted or none", async () => {
    const subscriptionId = await fundedSubscription(database, "alias-user", { ai: 100 });
    const aliases = Array.from({ length: 11 }, (_, i) => `a${i}: runAiTask(subscriptionId: $s, input: { prompt: "hi", maxTokens: 10 }) { output }`);
    const response = await server.gql(`mutation($s: ID!) { ${aliases.join("\n")} }`, { s: subscriptionId }, { token: await userToken("alias-user") });

    // All or nothing per operation: the 11th alias is over the limit, so none runs, nothing is
    // charged and the ten counted calls are given back.
    expect(response.status).toBe(429);
    expect(response.body.data).toBeNull();
    expect(response.body.errors!.map((e) => [e.path, e.extensions.code])).toEqual([[["a10"], "RATE_LIMITED"]]);
    // No charge, but the balance it would have spent from, as a 402 shows it.
    expect(response.body.extensions!.credits).toEqual({ charges: [], remaining: { [subscriptionId]: { ai: 100 } } });
    expect((await ledgerState(database, subscriptionId)).balances.ai).toBe(100);
    // Nothing of this caller's window was used: ten aliases fit in one operation.
    const ten = await server.gql(`mutation($s: ID!) { ${aliases.slice(0, 10).join("\n")} }`, { s: subscriptionId }, { token: await userToken("alias-user") });
    expect(ten.status).toBe(200);
    expect(ten.body.extensions!.credits.charges).toHaveLength(10);
    expect((await ledgerState(database, subscriptionId)).balances.ai).toBe(90);
    // Now the window is used up.
    expectRateLimited(await server.gql(RUN_AI, { s: subscriptionId }, { token: await userToken("alias-user") }));
  });

  it("counts per caller: another user still has their own 10", async () => {
    const subscriptionId = await fundedSubscription(database, "other-user", { ai: 100 });
    const token = await userToken("other-user");
    const responses = await Promise.all(Array.from({ length: 11 }, () => server.gql(RUN_AI, { s: subscriptionId }, { token })));
    expect(countByStatus(responses)).toEqual({ 200: 10, 429: 1 });
  });
});

describe.skipIf(!redisAvailable || !postgresAvailable)("rate limits on two instances sharing Redis", () => {
  let database: TestDatabase;
  let servers: TestServer[];

  beforeAll(async () => {
    database = await createPostgresDatabase();
    const env = {
      REDIS_URL: TEST_REDIS_URL,
      // A prefix of its own, so parallel or repeated runs never share counters.
      RATE_LIMIT_KEY_PREFIX: `test:rl:${randomBytes(6).toString("hex")}:`,
      RATE_LIMIT_DEFAULT: "10/1m",
      RATE_LIMIT_STORE_TIMEOUT: "5s",
    };
    servers = await Promise.all([startTestServer({ database, env }), startTestServer({ database, env })]);
  });
  afterAll(async () => {
    await Promise.all((servers ?? []).map((s) => s.close()));
    await database?.dispose();
  });

  it("of 50 simultaneous calls split over both instances against max 10, exactly 10 run", async () => {
    expect(servers.map((s) => s.app.services.config.REDIS_URL)).toEqual([TEST_REDIS_URL, TEST_REDIS_URL]);
    await expectExactBurst(database, servers, "shared-burst-user");
  });
});

describe("rate limits while Redis is down", () => {
  let database: TestDatabase;
  let closed: TestServer;
  let open: TestServer;

  beforeAll(async () => {
    database = await createTestDatabase(BACKENDS.at(-1)!);
    const env = {
      REDIS_URL: `redis://127.0.0.1:${await closedPort()}`,
      RATE_LIMIT_STORE_TIMEOUT: "300ms",
      RATE_LIMIT_DEFAULT: "10/1m",
    };
    closed = await startTestServer({ database, env: { ...env, RATE_LIMIT_ON_STORE_ERROR: "closed" } });
    open = await startTestServer({ database, env: { ...env, RATE_LIMIT_ON_STORE_ERROR: "open" } });
  });
  afterAll(async () => {
    await closed?.close();
    await open?.close();
    await database?.dispose();
  });

  it("fail-closed (default): RATE_LIMITED, 429, retryAfterSeconds 1, 'limiter unavailable', nothing charged", async () => {
    expect(closed.config.RATE_LIMIT_ON_STORE_ERROR).toBe("closed");
    const subscriptionId = await fundedSubscription(database, "outage-closed", { ai: 10 });
    const before = await ledgerState(database, subscriptionId);
    const response = await closed.gql(RUN_AI, { s: subscriptionId }, { token: await userToken("outage-closed") });

    expect(response.status).toBe(429);
    expect(response.body.errors![0].message).toBe("Rate limiter unavailable: try again in a second");
    expect(response.body.errors![0].extensions).toMatchObject({ code: "RATE_LIMITED", retryAfterSeconds: 1 });
    expect(await ledgerState(database, subscriptionId)).toEqual(before);
  });

  it("fail-open: the call runs and is charged", async () => {
    const subscriptionId = await fundedSubscription(database, "outage-open", { ai: 20 });
    const responses = await Promise.all(
      Array.from({ length: 12 }, async () => open.gql(RUN_AI, { s: subscriptionId }, { token: await userToken("outage-open") })),
    );
    // Unlimited while the store is down: all 12 run, over the 10/1m default.
    expect(countByStatus(responses)).toEqual({ 200: 12 });
    expect((await ledgerState(database, subscriptionId)).balances.ai).toBe(8);
  });
});
