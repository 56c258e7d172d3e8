/**
 * A retry while the first call with its Idempotency-Key still runs is 409 CONFLICT that says when to
 * send again (an outside audit by a client SDK author): `extensions.retryAfterSeconds` and a
 * `Retry-After` header, as a 429 carries them. Before, it said so only in prose ("retry in a few
 * seconds"), so a client had to guess. On metered calls, over HTTP, on PGlite and
 * PostgreSQL (admin mutations: test/e2e/admin-idempotency.test.ts). Also the row of docs/reliability.md's key-outcome table for a keyed call whose client
 * went away while it ran: its hold is refunded as not delivered, the key released, and a retry runs
 * the call again, one net charge.
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../../src/db/database.js";
import { STILL_RUNNING_RETRY_AFTER_SECONDS } from "../../src/idempotency/still-running.js";
import { auditLedger } from "../../src/ledger/audit.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { fundedSubscription, startTestServer, userToken, type GraphQLResponse, type TestServer } from "../helpers/test-app.js";

const OWNER = "conflict-retry-owner";

const RUN_AI = `mutation Run($sub: ID!) { runAiTask(subscriptionId: $sub, input: { prompt: "hello", maxTokens: 16 }) { output } }`;

const newKey = (() => {
  let n = 0;
  return (label: string) => `${label}-${Date.now()}-${++n}`;
})();

/** The 409 a retry gets while the key's first call runs: the closed code, its message, and when to come back. */
function expectStillRunning(response: GraphQLResponse): void {
  expect(response.status).toBe(409);
  expect(response.body.errors).toHaveLength(1);
  const [error] = response.body.errors!;
  expect(error.message).toMatch(/^A request with this Idempotency-Key is still being processed: retry /);
  expect(error.extensions).toMatchObject({ code: "CONFLICT", retryAfterSeconds: STILL_RUNNING_RETRY_AFTER_SECONDS });
  expect(response.headers.get("retry-after")).toBe(String(STILL_RUNNING_RETRY_AFTER_SECONDS));
}

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe.each(BACKENDS)("a 409 for a call still running says when to retry, on %s", (backend) => {
  let database: TestDatabase;
  let server: TestServer;
  let token: string;

  beforeAll(async () => {
    database = await createTestDatabase(backend);
    // `slow` keeps the first call running while the retry arrives (README, SIMULATE_FAILURES).
    server = await startTestServer({ database, env: { SIMULATE_FAILURES: "1", SIMULATE_SLOW_MS: "2000", RATE_LIMIT_DEFAULT: "10000/1m" } });
    token = await userToken(OWNER);
  }, 120_000);
  afterAll(async () => {
    await server?.close();
    await database?.dispose();
  });

  const run = (sub: string, key: string, headers: Record<string, string> = {}) =>
    server.gql(RUN_AI, { sub }, { token, headers: { "idempotency-key": key, ...headers } });

  const keyState = async (key: string): Promise<string | undefined> =>
    (await queryRows<{ state: string }>(database.db, sql`select state from idempotency_keys where key = ${key}`))[0]?.state;

  const ledgerKinds = async (sub: string): Promise<string[]> =>
    (await queryRows<{ kind: string }>(database.db, sql`select kind from credit_ledger where subscription_id = ${sub}::uuid order by seq`)).map((r) => r.kind);

  it("a metered call: 409 CONFLICT with retryAfterSeconds and Retry-After, nothing charged; the first call's answer stands", async () => {
    const sub = await fundedSubscription(database, OWNER, { ai: 10 });
    const key = newKey("metered");
    const first = run(sub, key, { "x-simulate-failure": "slow" });
    await waitFor(async () => (await keyState(key)) === "PENDING");

    const retry = await run(sub, key);
    expectStillRunning(retry);
    expect(retry.body.extensions?.credits?.charges ?? []).toEqual([]);

    expect((await first).status).toBe(200);
    // Waited as told, the retry gets the first call's answer: a replay, nothing charged again.
    const later = await run(sub, key);
    expect(later.status).toBe(200);
    expect(later.body.extensions!.credits.charges[0]).toMatchObject({ replayed: true, cost: 1 });
    expect((await ledgerKinds(sub)).filter((k) => k === "DEBIT")).toHaveLength(1);
  });

  it("a keyed call whose client went away while it ran: refunded as not delivered, key released, a retry runs again (one net charge)", async () => {
    const sub = await fundedSubscription(database, OWNER, { ai: 10 });
    const key = newKey("gone");
    const abort = new AbortController();
    const first = fetch(`${server.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}`, "idempotency-key": key, "x-simulate-failure": "slow" },
      body: JSON.stringify({ query: RUN_AI, variables: { sub } }),
      signal: abort.signal,
    });
    await waitFor(async () => (await keyState(key)) === "PENDING");
    abort.abort();
    await expect(first).rejects.toThrow();
    // The call ends after its slow wait; its settlement finds the client gone.
    await waitFor(async () => (await keyState(key)) === undefined);
    await waitFor(async () => (await ledgerKinds(sub)).includes("REFUND"));

    const retry = await run(sub, key);
    expect(retry.status).toBe(200);
    expect(retry.body.extensions!.credits.charges[0]).toMatchObject({ cost: 1, refunded: 0 });
    expect(retry.body.extensions!.credits.charges[0].replayed).toBeUndefined();
    expect(await ledgerKinds(sub)).toEqual(["GRANT", "DEBIT", "REFUND", "DEBIT"]);
    const reasons = await queryRows<{ reason: string }>(database.db, sql`select reason from credit_ledger where subscription_id = ${sub}::uuid and kind = 'REFUND'`);
    expect(reasons.map((r) => r.reason)).toEqual(["result not delivered"]);
    expect(retry.body.extensions!.credits.remaining).toEqual({ [sub]: { ai: 9 } });
    expect((await auditLedger(database.db)).ok).toBe(true);
  });
});
