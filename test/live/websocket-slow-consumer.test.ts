/**
 * A live-balance client that stops reading (its TCP socket paused) is dropped within seconds of the
 * kernel's buffers filling, not buffered for (DESIGN.md: "Slow consumers are dropped, never buffered
 * without bound"; docs/live-balance.md, "Slow consumers"). An outside audit found such a socket kept
 * for 35–60 s with ~3.9 MB in the kernel's send queue: graphql-ws waits for each send to be written,
 * so `bufferedAmount` never passed one event per subscription, and the hub's 100-event bound is
 * reached only at the push interval's pace. The close (1013) then waited behind the unsent data, so
 * a client that never read again left the server's socket in FIN-WAIT-1 with megabytes unsent; and
 * the drop was logged and counted once per subscription (100 lines, +100) instead of once per socket.
 *
 * Here: one socket with 100 subscriptions stops reading while one balance is changed every few ms
 * (events pushed at the default interval, 100 ms, so the hub's bound alone would take at least 10 s
 * after the kernel's buffers filled). The server must drop it within 15 s of the pause, leave no
 * socket of it in the kernel (reset, not a FIN queued behind megabytes), log and count it once, and
 * keep serving another subscriber of the same balance.
 */
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { changeBalance } from "../../src/ledger/change-balance.js";
import { createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { captureLogLines } from "../helpers/log-lines.js";
import { postgresAvailable } from "../helpers/services.js";
import { liveClient } from "../helpers/live-client.js";
import { fundedSubscription, startTestServer, userToken, type TestServer } from "../helpers/test-app.js";
import { openRawSocket } from "./raw-graphql-ws.js";

const SUBSCRIPTIONS = 100;
// Aliases of the entry make each event a few kB: 100 subscriptions fill the kernel's buffers fast.
const BIG_EVENT = `subscription ($s: ID!) { creditBalanceChanged(subscriptionId: $s) { balance ${Array.from(
  { length: 8 },
  (_, i) => `e${i}: lastEntry { id kind amount balanceAfter operation reason actorId requestId createdAt }`,
).join(" ")} } }`;
const SMALL_EVENT = `subscription ($s: ID!) { creditBalanceChanged(subscriptionId: $s) { balance } }`;

/**
 * The kernel's TCP sockets from `localPort` to `remotePort` (IPv4 and IPv6), as /proc/net/tcp lists
 * them: the state (01 ESTABLISHED, 04 FIN-WAIT-1, …) and the bytes in the send queue.
 */
function kernelSockets(localPort: number, remotePort: number): { state: string; sendQueue: number }[] {
  const found: { state: string; sendQueue: number }[] = [];
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 5) continue;
      const port = (address: string) => parseInt(address.split(":").at(-1) ?? "", 16);
      if (port(fields[1]) !== localPort || port(fields[2]) !== remotePort) continue;
      found.push({ state: fields[3], sendQueue: parseInt(fields[4].split(":")[0], 16) });
    }
  }
  return found;
}

async function slowConsumerCount(url: string): Promise<number> {
  const metrics = await (await fetch(`${url}/metrics`)).text();
  return Number(/^live_balance_slow_consumers_total (\d+)/m.exec(metrics)?.[1] ?? 0);
}

describe("a live-balance client that stops reading", () => {
  let database: TestDatabase;
  let server: TestServer;
  const logs = captureLogLines();

  beforeAll(async () => {
    // PostgreSQL where it answers (always under REQUIRE_SERVICES=1), as in the audit; PGlite otherwise.
    database = await createTestDatabase(postgresAvailable ? "postgres" : "pglite");
    server = await startTestServer({ database, env: { LOG_LEVEL: "warn", LIVE_MAX_SUBSCRIPTIONS_PER_CALLER: "200" }, logDestination: logs.destination });
  }, 120_000);
  afterAll(async () => {
    await server?.close();
    await database?.dispose();
  });

  it("is dropped within seconds, reset, logged and counted once; others keep their events", { timeout: 60_000 }, async () => {
    const live = server.app.services.live!;
    const subscriptionId = await fundedSubscription(database, "slow-reader", { leads: 10_000_000 });
    const token = await userToken("slow-reader");
    const countedBefore = await slowConsumerCount(server.url);

    // Another subscriber of the same balance, reading normally.
    const other = liveClient(server.url, token);
    const otherEvents = other.subscribe(SMALL_EVENT, { s: subscriptionId });
    await expect.poll(() => live.subscriberCount, { timeout: 10_000 }).toBe(1);

    const slow = await openRawSocket(server.url, token);
    for (let i = 0; i < SUBSCRIPTIONS; i++) slow.subscribe(String(i), BIG_EVENT, { s: subscriptionId });
    await expect.poll(() => live.subscriberCount, { timeout: 10_000 }).toBe(1 + SUBSCRIPTIONS);

    const serverPort = Number(new URL(server.url).port);
    const clientPort = slow.localPort();
    expect(kernelSockets(serverPort, clientPort)).toHaveLength(1);

    slow.pauseReading();
    const pausedAt = Date.now();
    let charging = true;
    const charger = (async () => {
      while (charging) {
        await changeBalance(database.db, {
          subscriptionId, creditType: "leads", kind: "ADJUSTMENT", delta: -1, actorId: "test", reason: "r".repeat(300), requestId: null,
        });
        await sleep(2);
      }
    })();
    try {
      // Dropped: its 100 subscriptions are ended, the other one is not.
      await expect.poll(() => live.subscriberCount, { timeout: 15_000, interval: 100 }).toBe(1);
      const droppedAfterMs = Date.now() - pausedAt;
      expect(droppedAfterMs).toBeLessThan(15_000);

      // Its server-side TCP socket is gone (reset: nothing left unsent in the kernel), within the
      // close's short grace (the close frame cannot pass the full buffer).
      await expect.poll(() => kernelSockets(serverPort, clientPort), { timeout: 5_000, interval: 100 }).toEqual([]);

      // The other subscriber still gets the balance's events.
      const seen = otherEvents.received.length;
      await expect.poll(() => otherEvents.received.length, { timeout: 10_000 }).toBeGreaterThan(seen + 2);
      expect(otherEvents.received.filter((r) => r.errors)).toEqual([]);
    } finally {
      charging = false;
      await charger;
    }

    // Logged once, counted once, for the socket (not once per subscription).
    const dropped = logs.lines.filter((line) => line.event === "live.slow_consumer");
    expect(dropped).toHaveLength(1);
    // Found by its stalled send (the unsent bytes stay under LIVE_MAX_BUFFERED_BYTES: one event per
    // subscription, ~0.4 MB; the hub's bound would take 10 s and more).
    expect(dropped[0]).toMatchObject({ level: 40, cause: "stalled", subscriptions: SUBSCRIPTIONS });
    expect(await slowConsumerCount(server.url)).toBe(countedBefore + 1);

    // Reading again, the client finds its socket closed: 1006 (reset) since its 1013 could not reach it.
    slow.resumeReading();
    const closed = await slow.closed;
    expect([1006, 1013]).toContain(closed.code);
    await other.dispose();
  });
});
