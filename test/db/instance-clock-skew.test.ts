/**
 * Instances whose clocks disagree with the database's, on one PostgreSQL database: decisions about
 * time that concern several instances are taken by the database's clock (docs/reliability.md,
 * "Clocks"). An outside audit ran instances 25 h ahead and 25 h behind (faketime)
 * and found that an instance ahead refunded calls still running on another instance and purged every
 * instance's idempotency keys, and that keys claimed by an instance behind were written already
 * expired: retries were charged, and webhook grants granted, twice.
 *
 * The servers run in this process while PostgreSQL keeps the real time, so faking Date here (and
 * nothing else: timers and performance.now() stay real) makes "this instance's clock" disagree with
 * the database's. Recovery passes are run as createCredits runs them in production, with no clock
 * injected; the servers' own passes are kept out of the way (RECOVERY_INTERVAL 1 h).
 */
import { sql } from "drizzle-orm";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { createApp, type App } from "../../src/app/create-app.js";
import { loadConfig, type Config } from "../../src/config/config.js";
import { queryRows } from "../../src/db/database.js";
import { auditLedger } from "../../src/ledger/audit.js";
import { createLogger } from "../../src/observability/logger.js";
import type { AiTaskOutput, AiTaskRequest, OperationProviders, ProviderCallOptions } from "../../src/providers/providers.js";
import { SimulatedProviders } from "../../src/providers/simulated/simulated-providers.js";
import { runRecoveryPass, type RecoveryReport } from "../../src/recovery/recovery-pass.js";
import { createPostgresDatabase, type TestDatabase } from "../helpers/databases.js";
import { postgresAvailable } from "../helpers/services.js";
import { adminToken, fundedSubscription, postGraphQL, userToken, type GraphQLResponse } from "../helpers/test-app.js";

const HOURS_25 = 25 * 3_600_000;
const OWNER = "skew-owner";
const ADMIN = "skew-admin";
const RUN_AI = `mutation Run($sub: ID!, $prompt: String!) { runAiTask(subscriptionId: $sub, input: { prompt: $prompt, maxTokens: 16 }) { output } }`;
const GRANT = `mutation Grant($input: GrantCreditsInput!) { grantCredits(input: $input) { id amount } }`;

interface Instance {
  app: App;
  config: Config;
  /**
   * Sends a request as `caller`, with a token minted at this moment (by the skewed clock when it is
   * faked): a token issued in a server's future is refused, which is not what these tests are about.
   */
  gql(query: string, variables: Record<string, unknown>, options: { caller: "user" | "admin"; idempotencyKey?: string }): Promise<GraphQLResponse>;
}

/** A runAiTask provider that waits, once its call has been charged, until the test lets it answer. */
class HeldAiProviders extends SimulatedProviders {
  private entered!: () => void;
  private release!: () => void;
  /** Resolves once a call is inside the provider: its hold is in pending_charges. */
  readonly running = new Promise<void>((resolve) => (this.entered = resolve));
  private readonly released = new Promise<void>((resolve) => (this.release = resolve));

  override async runAiTask(request: AiTaskRequest, options: ProviderCallOptions): Promise<AiTaskOutput> {
    this.entered();
    await this.released;
    return super.runAiTask(request, options);
  }

  letAnswer(): void {
    this.release();
  }
}

/**
 * Runs `work` as an instance whose clock is `offsetMs` off the database's: only Date is faked, and it
 * keeps ticking (a skewed clock still runs).
 */
async function withInstanceClockOff<T>(offsetMs: number, work: () => Promise<T>): Promise<T> {
  vi.useFakeTimers({ toFake: ["Date"], now: Date.now() + offsetMs, shouldAdvanceTime: true });
  try {
    return await work();
  } finally {
    vi.useRealTimers();
  }
}

describe.skipIf(!postgresAvailable)("instances whose clocks disagree with the database's (PostgreSQL)", () => {
  let database: TestDatabase;
  let held: HeldAiProviders;
  /** Serves the call held in flight (test 1); otherwise one instance among two. */
  let first: Instance;
  let second: Instance;

  async function startInstance(providers?: OperationProviders): Promise<Instance> {
    const config = loadConfig({
      NODE_ENV: "test",
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "silent",
      REQUEST_LIMIT: "1000000/1m",
      RATE_LIMIT_DEFAULT: "10000/1m",
      // Every pass in these tests is run by the test, at the moment it chooses.
      RECOVERY_INTERVAL: "1h",
    });
    const app = await createApp(config, { database, logger: createLogger(config.LOG_LEVEL), providers });
    const url = await app.listen(0, "127.0.0.1");
    return {
      app,
      config,
      gql: async (query, variables, { caller, idempotencyKey }) =>
        postGraphQL(`${url}/graphql`, query, variables, {
          token: caller === "admin" ? await adminToken(ADMIN) : await userToken(OWNER),
          headers: idempotencyKey ? { "idempotency-key": idempotencyKey } : {},
        }),
    };
  }

  /** A recovery pass as an instance runs it in production: createCredits injects no clock. */
  const productionPass = (): Promise<RecoveryReport> =>
    runRecoveryPass({ db: database.db, settleTimeoutMs: first.config.CHARGE_SETTLE_TIMEOUT, logger: createLogger("silent") });

  async function ledgerKinds(subscriptionId: string): Promise<string[]> {
    const rows = await queryRows<{ kind: string }>(
      database.db,
      sql`select kind from credit_ledger where subscription_id = ${subscriptionId}::uuid order by created_at, id`,
    );
    return rows.map((row) => row.kind);
  }

  async function aiBalance(subscriptionId: string): Promise<number> {
    const [row] = await queryRows<{ balance: number }>(
      database.db,
      sql`select balance from credit_balances where subscription_id = ${subscriptionId}::uuid and credit_type = 'ai'`,
    );
    return Number(row.balance);
  }

  async function keyExists(key: string): Promise<boolean> {
    const rows = await queryRows<{ n: number }>(database.db, sql`select count(*)::int as n from idempotency_keys where key = ${key}`);
    return Number(rows[0].n) === 1;
  }

  beforeAll(async () => {
    database = await createPostgresDatabase();
    held = new HeldAiProviders();
    first = await startInstance(held);
    second = await startInstance();
  });
  afterEach(() => {
    vi.useRealTimers();
  });
  afterAll(async () => {
    held?.letAnswer();
    await first?.app.close();
    await second?.app.close();
    await database?.dispose();
  });

  it("a recovery pass by an instance 25 h ahead does not refund the hold of a call still running on another", async () => {
    const sub = await fundedSubscription(database, OWNER, { ai: 10 });
    const inFlight = first.gql(RUN_AI, { sub, prompt: "still running" }, { caller: "user" });
    await held.running;

    let report: RecoveryReport;
    try {
      report = await withInstanceClockOff(HOURS_25, productionPass);
    } finally {
      held.letAnswer();
    }
    expect(report.refunded).toBe(0);
    const answer = await inFlight;
    expect(answer.status).toBe(200);
    const charge = answer.body.extensions!.credits.charges[0];
    expect(charge.cost).toBeGreaterThan(0);
    expect(await ledgerKinds(sub)).not.toContain("REFUND");
    expect(await aiBalance(sub)).toBe(10 - charge.cost);
  });

  it("a recovery pass by an instance 25 h ahead purges no live idempotency key: a retry replays, charged once", async () => {
    const sub = await fundedSubscription(database, OWNER, { ai: 10 });
    const key = `ahead-${sub}`;
    const call = (instance: Instance) => instance.gql(RUN_AI, { sub, prompt: "once" }, { caller: "user", idempotencyKey: key });
    const firstCall = await call(second);
    expect(firstCall.status).toBe(200);
    const cost = firstCall.body.extensions!.credits.charges[0].cost;
    expect(cost).toBeGreaterThan(0);

    const report = await withInstanceClockOff(HOURS_25, productionPass);
    expect(report.purgedIdempotencyKeys).toBe(0);
    expect(await keyExists(key)).toBe(true);

    const retry = await call(first);
    expect(retry.status).toBe(200);
    expect(retry.body.extensions!.credits.charges[0].replayed).toBe(true);
    expect((await ledgerKinds(sub)).filter((kind) => kind === "DEBIT")).toHaveLength(1);
    expect(await aiBalance(sub)).toBe(10 - cost);
  });

  it("a key claimed by an instance 25 h behind is replayed by a retry on another instance, not charged again", async () => {
    const sub = await fundedSubscription(database, OWNER, { ai: 10 });
    const key = `behind-${sub}`;
    const call = (instance: Instance) => instance.gql(RUN_AI, { sub, prompt: "once" }, { caller: "user", idempotencyKey: key });
    const firstCall = await withInstanceClockOff(-HOURS_25, () => call(second));
    expect(firstCall.status).toBe(200);
    const cost = firstCall.body.extensions!.credits.charges[0].cost;

    const retry = await call(first);
    expect(retry.status).toBe(200);
    expect(retry.body.extensions!.credits.charges[0].replayed).toBe(true);
    expect((await ledgerKinds(sub)).filter((kind) => kind === "DEBIT")).toHaveLength(1);
    expect(await aiBalance(sub)).toBe(10 - cost);
  });

  it("grantCredits with an Idempotency-Key, sent by an instance 25 h behind and again by another, grants once", async () => {
    const sub = await fundedSubscription(database, OWNER, {});
    const key = `evt_${sub}`;
    const input = { subscriptionId: sub, type: "ai", amount: 25, reason: "payment webhook" };
    const grant = (instance: Instance) => instance.gql(GRANT, { input }, { caller: "admin", idempotencyKey: key });

    const delivered = await withInstanceClockOff(-HOURS_25, () => grant(second));
    expect(delivered.status).toBe(200);
    const again = await grant(first);
    expect(again.status).toBe(200);
    expect(again.body.data.grantCredits).toEqual(delivered.body.data.grantCredits);
    expect((await ledgerKinds(sub)).filter((kind) => kind === "GRANT")).toHaveLength(1);
    expect(await aiBalance(sub)).toBe(25);
  });

  it("grantCredits with an Idempotency-Key, sent by an instance, grants once after a pass by an instance 25 h ahead", async () => {
    const sub = await fundedSubscription(database, OWNER, {});
    const key = `evt_${sub}`;
    const input = { subscriptionId: sub, type: "ai", amount: 25, reason: "payment webhook" };
    const grant = (instance: Instance) => instance.gql(GRANT, { input }, { caller: "admin", idempotencyKey: key });

    expect((await grant(first)).status).toBe(200);
    await withInstanceClockOff(HOURS_25, productionPass);
    expect((await grant(second)).status).toBe(200);
    expect((await ledgerKinds(sub)).filter((kind) => kind === "GRANT")).toHaveLength(1);
    expect(await aiBalance(sub)).toBe(25);
  });

  it("the ledger audit stays clean", async () => {
    expect((await auditLedger(database.db)).ok).toBe(true);
  });
});
