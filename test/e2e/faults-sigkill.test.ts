/**
 * A real server process (`node --import tsx src/main.ts`) killed with SIGKILL while metered calls are
 * in the middle of their (deliberately slow) provider call: their debits are committed and never
 * settled. The recovery pass refunds exactly those
 * debits once the dead instance's lease has expired (INSTANCE_LEASE_TTL, 15 s by default), without
 * waiting for CHARGE_SETTLE_TIMEOUT; calls that finished before the kill stay charged; the ledger
 * audit is clean.
 * What the test observes is written to test-results/faults-sigkill.json.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPostgresDatabase, type TestDatabase } from "../helpers/databases.js";
import { postgresAvailable } from "../helpers/services.js";
import { fundedSubscription, postGraphQL } from "../helpers/test-app.js";
import { mintToken } from "../../src/auth/mint.js";
import { queryRows } from "../../src/db/database.js";
import { auditLedger } from "../../src/ledger/audit.js";
import { createLogger } from "../../src/observability/logger.js";
import { freePort } from "../helpers/closed-port.js";
import { RECOVERY_REFUND_REASON, runRecoveryPass } from "../../src/recovery/recovery-pass.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const JWT_SECRET = "sigkill-test-secret-that-is-long-enough-for-hs256";
const RUN_AI = `mutation Run($sub: ID!, $prompt: String!) { runAiTask(subscriptionId: $sub, input: { prompt: $prompt, maxTokens: 16 }) { output } }`;
const SLOW_CALLS = 12;
const FAST_CALLS = 5;


async function waitFor(condition: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe.skipIf(!postgresAvailable)("a server killed with SIGKILL mid-load (PostgreSQL)", () => {
  let database: TestDatabase;
  let child: ChildProcess | undefined;
  let output = "";

  beforeAll(async () => {
    database = await createPostgresDatabase(4);
  });
  afterAll(async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await database?.dispose();
  });

  it("the recovery pass refunds exactly the debits the dead process left unsettled", async () => {
    const sub = await fundedSubscription(database, "sigkill-owner", { ai: 100 });
    const token = await mintToken({ sub: "sigkill-owner", secret: JWT_SECRET });
    const port = await freePort();
    child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
      cwd: ROOT,
      // A minimal environment: nothing from the test runner leaks into the server's configuration.
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        NODE_ENV: "test",
        DATABASE_URL: database.url!,
        DATABASE_POOL_SIZE: "4",
        JWT_SECRET,
        PORT: String(port),
        HOST: "127.0.0.1",
        LOG_LEVEL: "warn",
        SIMULATE_FAILURES: "1",
        SIMULATE_SLOW_MS: "60000",
        RATE_LIMIT_DEFAULT: "100000/1m",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout!.on("data", (chunk) => (output += chunk));
    child.stderr!.on("data", (chunk) => (output += chunk));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child!.once("exit", (_code, signal) => resolve(signal)));

    const base = `http://127.0.0.1:${port}`;
    await waitFor(async () => (await fetch(`${base}/health`)).status === 200, 60_000, `the server to start (output: ${output})`);

    // Calls that finish before the kill: charged and settled.
    for (let i = 0; i < FAST_CALLS; i++) {
      const res = await postGraphQL(`${base}/graphql`, RUN_AI, { sub, prompt: `fast ${i}` }, { token });
      expect(res.status).toBe(200);
    }
    // Calls caught mid-provider by the kill: debited, never settled.
    const slow = Array.from({ length: SLOW_CALLS }, (_, i) =>
      postGraphQL(`${base}/graphql`, RUN_AI, { sub, prompt: `slow ${i}` }, { token, headers: { "x-simulate-failure": "slow" } }).then(
        () => "answered",
        () => "connection lost",
      ),
    );
    const pending = async () =>
      Number((await queryRows<{ n: number }>(database.db, sql`select count(*)::int as n from pending_charges where subscription_id = ${sub}::uuid`))[0].n);
    await waitFor(async () => (await pending()) === SLOW_CALLS, 15_000, "the slow calls to be debited");

    child.kill("SIGKILL");
    expect(await exited).toBe("SIGKILL");
    expect(await Promise.all(slow)).toEqual(Array(SLOW_CALLS).fill("connection lost"));
    expect(await pending()).toBe(SLOW_CALLS);

    // The dead instance's lease is still live just after the kill: the pass leaves its holds alone.
    const logger = createLogger("silent");
    expect((await runRecoveryPass({ db: database.db, settleTimeoutMs: 5 * 60_000, logger })).refunded).toBe(0);
    // Once it expires (no renewal; 15 s by default), exactly the unsettled debits are refunded, long before CHARGE_SETTLE_TIMEOUT.
    const report = { refunded: 0, refundedCredits: 0, failed: 0 };
    await waitFor(
      async () => {
        const pass = await runRecoveryPass({ db: database.db, settleTimeoutMs: 5 * 60_000, logger });
        report.refunded += pass.refunded;
        report.refundedCredits += pass.refundedCredits;
        report.failed += pass.failed;
        return report.refunded >= SLOW_CALLS;
      },
      25_000,
      "the dead instance's lease to expire and its holds to be refunded",
    );
    expect(report).toMatchObject({ refunded: SLOW_CALLS, refundedCredits: SLOW_CALLS, failed: 0 });
    expect(await pending()).toBe(0);

    const kinds = await queryRows<{ kind: string; reason: string | null; n: number }>(
      database.db,
      sql`select kind, reason, count(*)::int as n from credit_ledger where subscription_id = ${sub}::uuid group by kind, reason order by kind`,
    );
    expect(kinds.map((k) => ({ ...k, n: Number(k.n) }))).toEqual([
      { kind: "DEBIT", reason: null, n: FAST_CALLS + SLOW_CALLS },
      { kind: "GRANT", reason: expect.anything(), n: 1 },
      { kind: "REFUND", reason: RECOVERY_REFUND_REASON, n: SLOW_CALLS },
    ]);
    const balance = await queryRows<{ balance: number }>(
      database.db,
      sql`select balance from credit_balances where subscription_id = ${sub}::uuid and credit_type = 'ai'`,
    );
    const audit = await auditLedger(database.db);
    mkdirSync("test-results", { recursive: true });
    writeFileSync(
      "test-results/faults-sigkill.json",
      `${JSON.stringify(
        {
          generatedAt: new Date().toISOString(),
          startingCredits: 100,
          finishedBeforeKill: FAST_CALLS,
          inFlightAtKill: SLOW_CALLS,
          exitSignal: "SIGKILL",
          pendingAfterKill: SLOW_CALLS,
          recovery: report,
          balanceAfterRecovery: Number(balance[0].balance),
          auditOk: audit.ok,
        },
        null,
        2,
      )}\n`,
    );
    expect(Number(balance[0].balance)).toBe(100 - FAST_CALLS);
    expect(audit.ok).toBe(true);
  });
});
