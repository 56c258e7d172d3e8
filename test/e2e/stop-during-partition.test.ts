/**
 * SIGTERM while the database is silently unreachable (a network partition: packets dropped, no RST,
 * no FIN), as `npm start` runs. An outside audit: the stop waited on the database for as long as the
 * partition lasted (over 3 minutes), and when the network healed the settlements it finally wrote
 * charged calls whose clients it had cut off at the grace: results never delivered, yet paid for.
 *
 * Now the stop ends by its deadline (25 s after the signal) with exit code 1 and says why; what the
 * stopped instance held is refunded whole by the next instance's recovery pass once its lease
 * expires, as after a crash.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { sql } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { spawnServer, type SpawnedServer } from "../helpers/spawn-server.js";
import { createPostgresDatabase, type TestDatabase } from "../helpers/databases.js";
import { startSilentProxy, type SilentProxy } from "../helpers/silent-proxy.js";
import { postgresAvailable } from "../helpers/services.js";
import { queryRows } from "../../src/db/database.js";
import { auditLedger } from "../../src/ledger/audit.js";
import { balancesOfSubscriptions } from "../../src/ledger/balances.js";

const SEARCH = `mutation($s: ID!) { searchLeads(subscriptionId: $s, input: { query: "x", limit: 2 }) { leads { name } } }`;
/** src/main.ts's STOP_DEADLINE_MS, and how much later than it the exit may come on a busy machine. */
const STOP_DEADLINE_MS = 25_000;
const EXIT_MARGIN_MS = 10_000;

function bannerValue(output: string, label: RegExp): string {
  const line = output.split("\n").find((l) => label.test(l));
  if (!line) throw new Error(`banner has no ${label}:\n${output}`);
  return line.trim().split(/\s+/).at(-1)!;
}

/** A slow metered call (`x-simulate-failure: slow`); a connection cut by the server is an outcome, not a throw. */
async function slowSearch(url: string, subscriptionId: string, token: string): Promise<number> {
  try {
    const res = await fetch(`${url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}`, "x-simulate-failure": "slow" },
      body: JSON.stringify({ query: SEARCH, variables: { s: subscriptionId } }),
    });
    await res.text();
    return res.status;
  } catch {
    return 0;
  }
}

describe.skipIf(!postgresAvailable)("npm start: SIGTERM while the database is silently unreachable", () => {
  let database: TestDatabase;
  let proxy: SilentProxy;
  const servers: SpawnedServer[] = [];
  beforeEach(async () => {
    database = await createPostgresDatabase(4);
    proxy = await startSilentProxy({ host: "127.0.0.1", port: 5432 });
  });
  afterEach(async () => {
    for (const server of servers.splice(0)) server.child.kill("SIGKILL");
    await proxy?.close();
    await database?.dispose();
  });

  const start = (databaseUrl: string) =>
    spawnServer({
      NODE_ENV: "development",
      DATABASE_URL: databaseUrl,
      DATABASE_DIRECT_URL: "",
      CONSOLE_BUILD: "off",
      SIMULATE_FAILURES: "1",
      SIMULATE_SLOW_MS: "2000",
      INSTANCE_LEASE_TTL: "3s",
      RECOVERY_INTERVAL: "1s",
    }).then((server) => (servers.push(server), server));
  const pendingCount = async () => Number((await queryRows<{ n: number }>(database.db, sql`select count(*)::int as n from pending_charges`))[0].n);

  it("exits by its deadline with 1, saying why, and the next instance refunds the calls it cut off whole", async () => {
    const stopped = await start(proxy.via(database.url!));
    const subscriptionId = bannerValue(stopped.output(), /Demo subscription/);
    const token = bannerValue(stopped.output(), /User token/);
    const calls = [slowSearch(stopped.url, subscriptionId, token), slowSearch(stopped.url, subscriptionId, token)];
    const heldBy = Date.now() + 15_000;
    while ((await pendingCount()) < 2) {
      if (Date.now() > heldBy) throw new Error(`the 2 holds were not taken:\n${stopped.output()}`);
      await sleep(50);
    }

    // The calls finish (2 s) during the partition: their settlements cannot reach the database.
    proxy.partition();
    const signalledAt = Date.now();
    stopped.child.kill("SIGTERM");
    const exit = await Promise.race([stopped.exited, sleep(STOP_DEADLINE_MS + EXIT_MARGIN_MS, "still running")]);
    expect(exit, stopped.output()).toBe(1);
    expect(Date.now() - signalledAt).toBeGreaterThanOrEqual(STOP_DEADLINE_MS - 1_000);
    expect(stopped.output()).toMatch(/"event":"stop\.deadline_passed"/);
    // Cut off at the grace: neither client received its result.
    expect(await Promise.all(calls)).toEqual([0, 0]);

    // The network heals; the next instance's recovery pass finds the stopped one's lease expired.
    proxy.heal();
    const next = await start(database.url!);
    const refundedBy = Date.now() + 30_000;
    while ((await pendingCount()) > 0) {
      if (Date.now() > refundedBy) throw new Error(`the holds were not refunded:\n${next.output()}`);
      await sleep(200);
    }
    const kinds = await queryRows<{ kind: string; n: number }>(
      database.db,
      sql`select kind, count(*)::int as n from credit_ledger where subscription_id = ${subscriptionId}::uuid and kind in ('DEBIT', 'RELEASE', 'REFUND') group by kind order by kind`,
    );
    expect(kinds).toEqual([
      { kind: "DEBIT", n: 2 },
      { kind: "REFUND", n: 2 },
    ]);
    const [, leads] = await balancesOfSubscriptions(database.db, [subscriptionId]);
    expect(leads).toMatchObject({ creditType: "leads", balance: 100 });
    expect(await auditLedger(database.db)).toMatchObject({ ok: true, mismatches: [] });
  }, 120_000);
});
