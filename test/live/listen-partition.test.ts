/**
 * The live-balance LISTEN session behind a silent network partition (packets dropped, no RST or
 * FIN), as an outside audit found it: nothing on the session failed, so it stayed "listening" while
 * hearing nothing, /health said `"liveBalance": "up"` and subscribers got no events, for as long as
 * the partition lasted (hours, with the kernel's default keepalive). Only the LISTEN path goes
 * through the proxy here; the pool (the relay, the probe, the changes) reaches PostgreSQL directly.
 *
 * The session is checked periodically: one not answering within the timeout is taken as lost at
 * once (/health "down", live.listen_lost), destroyed, and replaced as a dropped one is; once the
 * network is back it listens again, and subscribers get the current balance (`entries: 0`), then
 * later changes as usual.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { healthRoute } from "../../src/app/health.js";
import { changeBalance } from "../../src/ledger/change-balance.js";
import type { BalanceEvent } from "../../src/live/balance-hub.js";
import { createLiveBalance, type LiveBalance } from "../../src/live/live-balance.js";
import { createLogger } from "../../src/observability/logger.js";
import { createPostgresDatabase, type TestDatabase } from "../helpers/databases.js";
import { captureLogLines } from "../helpers/log-lines.js";
import { postgresAvailable } from "../helpers/services.js";
import { startSilentProxy, type SilentProxy } from "../helpers/silent-proxy.js";
import { fundedSubscription } from "../helpers/test-app.js";

/** Short, so that the test need not wait the production 15 s + 5 s. */
const CHECK = { intervalMs: 1_000, timeoutMs: 1_000 };
/** Beyond interval + timeout: the lost session's 'end', and a loaded test machine. */
const MARGIN_MS = 2_000;

interface Health {
  status: string;
  liveBalance: string;
}

/** `waiting`, failing with `facts()` (as they are then) added to its message. */
async function saying<T>(waiting: Promise<T>, facts: () => unknown): Promise<T> {
  try {
    return await waiting;
  } catch (err) {
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n${JSON.stringify(facts())}`);
  }
}

/** Every event of one subscription, as it comes. */
function collect(events: AsyncIterableIterator<BalanceEvent>) {
  const received: BalanceEvent[] = [];
  void (async () => {
    for await (const event of events) received.push(event);
  })();
  return {
    received,
    async waitFor(match: (event: BalanceEvent) => boolean, timeoutMs = 10_000): Promise<BalanceEvent> {
      await saying(expect.poll(() => received.find(match), { timeout: timeoutMs }).toBeDefined(), () => ({ received }));
      return received.find(match)!;
    },
  };
}

describe.skipIf(!postgresAvailable)("a silent partition of the live-balance LISTEN session (PostgreSQL)", () => {
  let database: TestDatabase;
  let proxy: SilentProxy;
  let live: LiveBalance | undefined;
  let healthServer: Server | undefined;

  beforeAll(async () => {
    database = await createPostgresDatabase(4);
    const target = new URL(database.url!);
    proxy = await startSilentProxy({ host: target.hostname, port: Number(target.port || 5432) });
  });
  afterAll(async () => {
    await live?.close();
    healthServer?.close();
    await proxy?.close();
    await database?.dispose();
  });

  /** GET /health as the server answers it, on this live balance's channel state. */
  async function serveHealth(balance: LiveBalance): Promise<() => Promise<Health>> {
    const route = healthRoute(database, {}, () => balance.channelState);
    healthServer = createServer((req, res) => void route({ req, res, requestId: "listen-partition" }));
    await new Promise<void>((resolve) => healthServer!.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(healthServer.address() as AddressInfo).port}/health`;
    return async () => (await (await fetch(url)).json()) as Health;
  }

  it("says down within the check's interval and timeout, and once healed listens again and brings the subscriber up to date", { timeout: 60_000 }, async () => {
    const logs = captureLogLines();
    live = createLiveBalance({
      database,
      directUrl: proxy.via(database.url!),
      pushIntervalMs: 50,
      logger: createLogger("info", logs.destination),
      listenCheck: CHECK,
    });
    await live.start();
    const health = await serveHealth(live);
    await expect.poll(health, { timeout: 10_000 }).toMatchObject({ status: "ok", liveBalance: "up" });

    const subscriptionId = await fundedSubscription(database, "partition-owner", { leads: 100 });
    const events = collect(live.subscribe(subscriptionId, ["leads"]));
    const adjust = (delta: number, reason: string) =>
      changeBalance(database.db, { subscriptionId, creditType: "leads", kind: "ADJUSTMENT", delta, actorId: "test", reason, requestId: null });
    const linesOf = (event: string) => logs.lines.filter((line) => line.event === event);

    await adjust(-1, "before");
    await events.waitFor((e) => e.balance === 99 && e.entries > 0);

    // Checks of a session that answers change nothing: the same one connection, nothing lost.
    await sleep(CHECK.intervalMs * 3);
    expect(proxy.connections).toBe(1);
    expect(linesOf("live.listen_lost")).toEqual([]);
    expect(await health()).toMatchObject({ status: "ok", liveBalance: "up" });

    // The LISTEN path goes silent; the balance keeps changing through the pool meanwhile.
    proxy.partition();
    const partitionedAt = Date.now();
    for (let i = 0; i < 8; i++) {
      await adjust(-1, `while partitioned ${i}`);
      await sleep(100);
    }
    const budget = CHECK.intervalMs + CHECK.timeoutMs + MARGIN_MS;
    await saying(
      expect.poll(health, { timeout: Math.max(0, partitionedAt + budget - Date.now()) }).toMatchObject({ status: "degraded", liveBalance: "down" }),
      () => ({ logs: logs.lines }),
    );
    expect(live.channelState).toBe("down");
    const lost = linesOf("live.listen_lost");
    expect(lost).toHaveLength(1);
    expect(lost[0]).toMatchObject({ level: 40, err: { message: expect.stringMatching(/no answer within 1000 ms/) } });
    // Nothing was heard through the partition (it was real): the subscriber is still at 99.
    expect(events.received.filter((e) => e.balance < 99)).toEqual([]);

    proxy.heal();
    await saying(expect.poll(health, { timeout: 20_000 }).toMatchObject({ status: "ok", liveBalance: "up" }), () => ({ logs: logs.lines }));
    expect(linesOf("live.listen_restored")).toHaveLength(1);

    // Brought up to date: the current balance, folding no entry it heard (some were missed).
    const resynced = await events.waitFor((e) => e.entries === 0);
    expect(resynced).toMatchObject({ subscriptionId, type: "leads", balance: 91 });
    // And changes are heard again.
    await adjust(-2, "after");
    await events.waitFor((e) => e.balance === 89 && e.entries > 0);
  });
});
