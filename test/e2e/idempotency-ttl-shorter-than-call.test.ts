/**
 * A keyed call that runs longer than IDEMPOTENCY_TTL (an outside audit, with IDEMPOTENCY_TTL=3s and
 * calls of 7 s): the claim expired mid-call, so a retry during the call took the key over and ran the
 * call again (two DEBITs for one key), and a retry just after it answered was run again too (its
 * stored outcome had expired with the claim, counted from the claim). Now a PENDING claim lasts as
 * long as a call may run (CHARGE_SETTLE_TIMEOUT), and a stored outcome is kept IDEMPOTENCY_TTL from
 * when it was stored. On PGlite and PostgreSQL, with the recovery pass purging expired keys.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../../src/db/database.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { fundedSubscription, startTestServer, userToken, type TestServer } from "../helpers/test-app.js";

const SEARCH_LEADS = `mutation ($s: ID!) { searchLeads(subscriptionId: $s, input: { query: "long calls", limit: 6 }) { total } }`;
const TTL_MS = 1_000;
const CALL_MS = 2_500;

describe.each(BACKENDS)("a keyed call that runs longer than IDEMPOTENCY_TTL, on %s", (backend) => {
  let database: TestDatabase;
  let server: TestServer;

  beforeAll(async () => {
    database = await createTestDatabase(backend);
    server = await startTestServer({
      database,
      env: { IDEMPOTENCY_TTL: `${TTL_MS}ms`, SIMULATE_FAILURES: "1", SIMULATE_SLOW_MS: String(CALL_MS), RECOVERY_INTERVAL: "100ms" },
    });
  });
  afterAll(async () => {
    await server?.close();
    await database?.dispose();
  });

  it("is charged once: a retry past the TTL during the call gets 409, one after it gets the stored outcome", { timeout: 30_000 }, async () => {
    const owner = `ttl-short-${backend}`;
    const subscriptionId = await fundedSubscription(database, owner, { leads: 100 });
    const token = await userToken(owner);
    const key = `ttl-short-key-${backend}`;
    const send = (slow: boolean) =>
      server.gql(SEARCH_LEADS, { s: subscriptionId }, { token, headers: { "idempotency-key": key, ...(slow ? { "x-simulate-failure": "slow" } : {}) } });

    const first = send(true);
    // Past the TTL (and a few recovery passes, which purge expired keys), the call still running.
    await sleep(TTL_MS + 600);
    const during = await send(false);
    expect(during.status).toBe(409);
    expect(during.body.errors![0].extensions.code).toBe("CONFLICT");

    const answered = await first;
    expect(answered.status).toBe(200);
    const after = await send(false);
    expect(after.status).toBe(200);
    expect(after.body.extensions!.credits.charges[0]).toMatchObject({ replayed: true, entryId: answered.body.extensions!.credits.charges[0].entryId });

    const debits = await queryRows<{ n: number | string }>(
      database.db,
      sql`select count(*) as n from credit_ledger where subscription_id = ${subscriptionId}::uuid and kind = 'DEBIT'`,
    );
    expect(Number(debits[0].n)).toBe(1);

    // The stored outcome is kept the TTL from when it was stored, then the key is new again.
    await sleep(TTL_MS + 300);
    const later = await send(false);
    expect(later.status).toBe(200);
    expect(later.body.extensions!.credits.charges[0].replayed).toBeUndefined();
  });
});
