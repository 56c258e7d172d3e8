/**
 * Instances whose clocks disagree with the database's (an outside audit ran several on one PostgreSQL
 * database under faketime at +90 s, −5 min and +25 h): grant expiry and alert times are judged on the
 * database's clock, never on the instance's.
 *   - grantCredits refused an expiry 60 s ahead on an instance 90 s ahead, and accepted one already
 *     past on an instance 5 minutes behind (its credits then expired at the next pass);
 *   - one usage spike raised two USAGE_SPIKE alerts from instances 5 minutes apart;
 *   - an alert raised by an instance 25 h ahead was stored 25 h in the future.
 * The server runs in this process and PostgreSQL keeps real time, so an instance's clock is skewed
 * by faking Date alone here (timers stay real).
 */
import { sql } from "drizzle-orm";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { loadConfig } from "../../src/config/config.js";
import { queryRows } from "../../src/db/database.js";
import { createLogger } from "../../src/observability/logger.js";
import { createObservability } from "../../src/observability/observability.js";
import { listAlerts } from "../../src/observability/alerts/alert-store.js";
import { createPostgresDatabase, type TestDatabase } from "../helpers/databases.js";
import { postgresAvailable } from "../helpers/services.js";
import { adminToken, fundedSubscription, startTestServer, type TestServer } from "../helpers/test-app.js";

const MINUTE = 60_000;
const GRANT = `mutation ($input: GrantCreditsInput!) { grantCredits(input: $input) { id kind amount } }`;

/** Real time, whatever Date says: performance's clock is not faked. */
const realNow = () => performance.timeOrigin + performance.now();

/** This process's clock (the instance's) set `offsetMs` off the real one, and running on from there. */
function skewInstanceClock(offsetMs: number): void {
  vi.useFakeTimers({ toFake: ["Date"], now: realNow() + offsetMs, shouldAdvanceTime: true });
}

describe.skipIf(!postgresAvailable)("grant expiry and alert times on the database's clock, with instance clocks skewed (PostgreSQL)", () => {
  let database: TestDatabase;
  let server: TestServer;

  beforeAll(async () => {
    database = await createPostgresDatabase();
    server = await startTestServer({ database });
  });
  afterEach(() => {
    vi.useRealTimers();
  });
  afterAll(async () => {
    vi.useRealTimers();
    await server?.close();
    await database?.dispose();
  });

  const databaseNow = async (): Promise<number> => {
    const [row] = await queryRows<{ now: Date | string }>(database.db, sql`select now() as now`);
    return new Date(row.now).getTime();
  };

  /** What a grant may have written: the subscription's ledger entries and grants. */
  const written = async (subscriptionId: string) => {
    const [row] = await queryRows<{ entries: string | number; grants: string | number; balance: string | number }>(
      database.db,
      sql`select (select count(*) from credit_ledger where subscription_id = ${subscriptionId}::uuid) as entries,
                 (select count(*) from credit_grants where subscription_id = ${subscriptionId}::uuid) as grants,
                 (select balance from credit_balances where subscription_id = ${subscriptionId}::uuid and credit_type = 'ai') as balance`,
    );
    return { entries: Number(row.entries), grants: Number(row.grants), balance: Number(row.balance) };
  };

  /** grantCredits as an admin, the token minted on the instance's clock (as its tokens are checked). */
  const grantExpiring = async (subscriptionId: string, expiresAt: Date) =>
    server.gql(
      GRANT,
      { input: { subscriptionId, type: "ai", amount: 5, reason: "promo", category: "PROMOTIONAL", expiresAt: expiresAt.toISOString() } },
      { token: await adminToken("clock-skew-admin") },
    );

  it("refuses an expiresAt a minute past on an instance 5 minutes behind, and writes nothing", async () => {
    const subscriptionId = await fundedSubscription(database, "skew-grant-behind", { ai: 10 });
    const before = await written(subscriptionId);
    skewInstanceClock(-5 * MINUTE);
    // Four minutes ahead of this instance's clock, but already past on the database's.
    const res = await grantExpiring(subscriptionId, new Date(realNow() - MINUTE));
    vi.useRealTimers();
    expect(res.status).toBe(400);
    expect(res.body.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
    expect(res.body.errors?.[0]?.message).toBe("expiresAt must be in the future; leave it out for credits that never expire");
    expect(await written(subscriptionId)).toEqual(before);
  });

  it("accepts an expiresAt 60 s ahead on an instance 90 s ahead", async () => {
    const subscriptionId = await fundedSubscription(database, "skew-grant-ahead", { ai: 10 });
    const before = await written(subscriptionId);
    skewInstanceClock(90_000);
    // Thirty seconds past on this instance's clock, a minute ahead on the database's.
    const expiresAt = new Date(Math.floor(realNow() / 1000) * 1000 + MINUTE);
    const res = await grantExpiring(subscriptionId, expiresAt);
    vi.useRealTimers();
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data.grantCredits).toMatchObject({ kind: "GRANT", amount: 5 });
    expect(await written(subscriptionId)).toEqual({ entries: before.entries + 1, grants: before.grants + 1, balance: before.balance + 5 });
    const [grant] = await queryRows<{ expires_at: Date | string }>(
      database.db,
      sql`select expires_at from credit_grants where subscription_id = ${subscriptionId}::uuid and category = 'PROMOTIONAL'`,
    );
    expect(new Date(grant.expires_at).getTime()).toBe(expiresAt.getTime());
  });

  it("raises one USAGE_SPIKE for one spike checked by instances whose clocks are 5 minutes apart", async () => {
    const config = loadConfig({ PGLITE_DIR: "memory://", LOG_LEVEL: "silent", NODE_ENV: "test" });
    const windowMs = config.ALERT_SPIKE_WINDOW;
    const subscriptionId = await fundedSubscription(database, "skew-spike", { leads: 1 });
    // The usual 20 credits per window over the last day, then 200 a minute ago: a spike on any clock.
    await database.db.execute(sql`
      insert into credit_ledger (subscription_id, credit_type, kind, amount, balance_after, operation, created_at)
      select ${subscriptionId}::uuid, 'leads', 'DEBIT', -20, 1000000, 'Mutation.searchLeads',
             now() - (${windowMs}::bigint * g + ${windowMs / 2}::bigint) * interval '1 millisecond'
        from generate_series(1, ${config.ALERT_SPIKE_BASELINE / windowMs}::int) g
      union all
      select ${subscriptionId}::uuid, 'leads', 'DEBIT', -200, 1000000, 'Mutation.searchLeads', now() - interval '1 minute'`);

    // Two instances as the server builds them (the production clock), on one database.
    const logger = createLogger("silent");
    const behind = createObservability(config, { db: database.db, logger });
    const onTime = createObservability(config, { db: database.db, logger });
    try {
      skewInstanceClock(-5 * MINUTE);
      const first = await behind.spikes.check(subscriptionId);
      vi.useRealTimers();
      const second = await onTime.spikes.check(subscriptionId);

      const stored = await listAlerts(database.db, { subscriptionId, limit: 10 });
      expect(stored.map((alert) => alert.kind)).toEqual(["USAGE_SPIKE"]);
      expect(second).toBeUndefined();
      // Measured on the database's clock too: the last window holds the 200 credits, not the 20 before them.
      expect(first).toEqual(stored[0]);
      expect(first).toMatchObject({ kind: "USAGE_SPIKE", subscriptionId, details: { recentCredits: 200, baselineAveragePerWindow: 20 } });
      expect(Math.abs(stored[0].createdAt.getTime() - (await databaseNow()))).toBeLessThan(2_000);
    } finally {
      await behind.close();
      await onTime.close();
    }
  });

  it.each([
    ["25 h ahead", 25 * 3_600_000],
    ["5 minutes behind", -5 * MINUTE],
  ])("stamps an alert the server raises with the database's time, on an instance %s", async (_label, offsetMs) => {
    const subscriptionId = await fundedSubscription(database, `skew-alert-${offsetMs}`, { skiptrace: 1 });
    const alerts = server.app.services.alerts!;
    skewInstanceClock(offsetMs);
    alerts.raise({ kind: "ESTIMATE_MISMATCH", subscriptionId, message: "held 1, measured 4", details: { hold: 1, actual: 4 } });
    await alerts.flush();
    vi.useRealTimers();
    const [alert] = await listAlerts(database.db, { subscriptionId, limit: 1 });
    expect(alert).toMatchObject({ kind: "ESTIMATE_MISMATCH", subscriptionId });
    expect(Math.abs(alert.createdAt.getTime() - (await databaseNow()))).toBeLessThan(2_000);
  });
});
