/**
 * Suspending or cancelling a subscription and the calls already on their way (an outside audit of
 * admin actions under load):
 * - a keyed call whose first run finished and was paid is replayed by its retry while the
 *   subscription is suspended or cancelled (it spends nothing); it was refused 403, so a client whose
 *   first answer was lost paid for a result it could not get back until the subscription was resumed;
 * - a keyed call authorized before a suspension committed, but held after it, was charged: the status
 *   was read before the key was claimed and not checked again by the hold statement.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditLedger } from "../../src/ledger/audit.js";
import { BACKENDS, createTestDatabase, type BackendName, type TestDatabase } from "../helpers/databases.js";
import { postgresAvailable } from "../helpers/services.js";
import { adminToken, fundedSubscription, startTestServer, userToken, type TestServer } from "../helpers/test-app.js";

const OWNER = "suspension-replays-owner";
const search = (s: string) => `mutation { searchLeads(subscriptionId: "${s}", input: { query: "roofers", limit: 10 }) { total } }`;
const SET_STATUS = `mutation ($id: ID!, $status: SubscriptionStatus!) { setSubscriptionStatus(id: $id, status: $status, reason: "audit") { status } }`;
const BALANCE = `query ($s: ID!) { subscription(id: $s) { balances { type balance held } } }`;

/** A server on a fresh database of `backend` for the describe block that calls it, and the calls its tests make. */
function serverFor(backend: BackendName) {
  const state = {} as { database: TestDatabase; server: TestServer; token: string; admin: string };
  beforeAll(async () => {
    state.database = await createTestDatabase(backend);
    state.server = await startTestServer({ database: state.database });
    state.token = await userToken(OWNER);
    state.admin = await adminToken();
  }, 120_000);
  afterAll(async () => {
    await state.server?.close();
    await state.database?.dispose();
  });
  return {
    database: () => state.database,
    keyed: (subscriptionId: string, key: string, as?: string) =>
      state.server.gql(search(subscriptionId), undefined, { token: as ?? state.token, headers: { "idempotency-key": key } }),
    setStatus: async (id: string, status: string) =>
      expect((await state.server.gql(SET_STATUS, { id, status }, { token: state.admin })).body.errors).toBeUndefined(),
    leads: async (s: string) =>
      (await state.server.gql(BALANCE, { s }, { token: state.token })).body.data.subscription.balances.find((b: { type: string }) => b.type === "leads"),
  };
}

describe.each(BACKENDS)("suspension and Idempotency-Key replays, on %s", (backend) => {
  const { database, keyed, setStatus, leads } = serverFor(backend);

  it.each(["SUSPENDED", "CANCELLED"])("replays a finished keyed call while the subscription is %s, and holds nothing new", async (status) => {
    const subscriptionId = await fundedSubscription(database(), OWNER, { leads: 100 });
    const first = await keyed(subscriptionId, `paid-${status}`);
    expect(first.status).toBe(200);
    const [charge] = first.body.extensions!.credits.charges;

    await setStatus(subscriptionId, status);
    const retry = await keyed(subscriptionId, `paid-${status}`);
    expect(retry.status).toBe(200);
    expect(retry.body.data).toEqual(first.body.data);
    expect(retry.body.extensions!.credits.charges).toEqual([{ ...charge, replayed: true }]);

    // A call that is not a replay is still refused, nothing held; its key was not used up.
    const fresh = await keyed(subscriptionId, `fresh-${status}`);
    expect(fresh.status).toBe(403);
    expect(fresh.body.errors?.[0].message).toBe(`Subscription ${subscriptionId} is ${status}: only ACTIVE subscriptions can spend credits`);
    expect(await leads(subscriptionId)).toEqual({ type: "leads", balance: 100 - charge.cost, held: 0 });
    // Another user with the same key learns nothing of it.
    expect((await keyed(subscriptionId, `paid-${status}`, await userToken("suspension-replays-stranger"))).status).toBe(403);

    await setStatus(subscriptionId, "ACTIVE");
    const afterResume = await keyed(subscriptionId, `fresh-${status}`);
    expect(afterResume.status).toBe(200);
    expect(afterResume.body.extensions!.credits.charges[0].replayed).not.toBe(true);
    expect((await auditLedger(database().db)).ok).toBe(true);
  });
});

describe.skipIf(!postgresAvailable)("a suspension racing a keyed call, on PostgreSQL", () => {
  const { database, keyed, setStatus, leads } = serverFor("postgres");

  it("refuses a keyed call held after a suspension that committed once it was authorized", async () => {
    const subscriptionId = await fundedSubscription(database(), OWNER, { leads: 100 });
    // The test takes the call's key row first, uncommitted: the server's claim waits for it after
    // step 3 has read the subscription ACTIVE.
    const blocker = new pg.Client({ connectionString: database().url });
    await blocker.connect();
    try {
      await blocker.query("begin");
      await blocker.query(
        `insert into idempotency_keys (actor_id, key, field_path, request_hash, state, expires_at)
         values ($1, 'raced', 'searchLeads', 'blocker', 'PENDING', now() + interval '1 hour')`,
        [OWNER],
      );
      const call = keyed(subscriptionId, "raced");
      await waitForLockWait(blocker);
      await setStatus(subscriptionId, "SUSPENDED");
      await blocker.query("rollback");

      const answer = await call;
      expect(answer.status).toBe(403);
      expect(answer.body.errors?.[0].message).toBe(`Subscription ${subscriptionId} is SUSPENDED: only ACTIVE subscriptions can spend credits`);
      expect(await leads(subscriptionId)).toEqual({ type: "leads", balance: 100, held: 0 });
      const debits = await blocker.query("select count(*)::int as n from credit_ledger where subscription_id = $1 and kind = 'DEBIT'", [subscriptionId]);
      expect(debits.rows[0].n).toBe(0);
    } finally {
      await blocker.end();
    }
    expect((await auditLedger(database().db)).ok).toBe(true);
  });
});

/** Until another backend of this database waits for a lock (the server's claim behind the test's row). */
async function waitForLockWait(client: pg.Client): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const waiting = await client.query("select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'");
    if (waiting.rows[0].n > 0) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error("the server's claim never waited for the test's key row");
}
