/**
 * A live-balance client that stops reading is dropped, not buffered for: once the kernel's buffers are
 * full, graphql-ws waits on each send, the client's events pile up in the hub to its bound, and the
 * server closes the socket with 1013 and forgets its subscriptions (before the fix the subscriptions
 * ended one by one and the dead socket stayed open).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { changeBalance } from "../../src/ledger/change-balance.js";
import { createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { fundedSubscription, startTestServer, userToken, type TestServer } from "../helpers/test-app.js";

// Many aliases of the entry make each event large, so the socket's buffers fill after few changes.
const BIG_EVENT = `subscription ($s: ID!) { creditBalanceChanged(subscriptionId: $s) { balance ${Array.from(
  { length: 40 },
  (_, i) => `e${i}: lastEntry { id kind amount balanceAfter operation reason actorId requestId createdAt }`,
).join(" ")} } }`;

describe("a live-balance client that does not read", () => {
  let database: TestDatabase;
  let server: TestServer;

  beforeAll(async () => {
    database = await createTestDatabase("pglite");
    server = await startTestServer({ database, env: { BALANCE_PUSH_INTERVAL: "1ms", LIVE_MAX_BUFFERED_BYTES: "50000" } });
  });
  afterAll(async () => {
    await server?.close();
    await database?.dispose();
  });

  it("is closed with 1013 once its events pass the bound", { timeout: 60_000 }, async () => {
    const subscriptionId = await fundedSubscription(database, "slow-owner", { leads: 1_000_000 });
    const socket = new WebSocket(server.url.replace(/^http/, "ws") + "/graphql", "graphql-transport-ws");
    const closed = new Promise<number>((resolve) => socket.once("close", (code) => resolve(code)));
    await new Promise<void>((resolve) => socket.once("open", () => resolve()));
    socket.send(JSON.stringify({ type: "connection_init", payload: { authorization: `Bearer ${await userToken("slow-owner")}` } }));
    await new Promise<void>((resolve) => socket.once("message", () => resolve()));
    for (let i = 0; i < 10; i++) {
      socket.send(JSON.stringify({ id: String(i), type: "subscribe", payload: { query: BIG_EVENT, variables: { s: subscriptionId } } }));
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(server.app.services.live?.subscriberCount).toBe(10);

    // Stop reading, then change the balance until the server gives up on the socket.
    (socket as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
    const deadline = Date.now() + 30_000;
    let changes = 0;
    while (server.app.services.live?.subscriberCount !== 0 && Date.now() < deadline) {
      await changeBalance(database.db, {
        subscriptionId, creditType: "leads", kind: "ADJUSTMENT", delta: -1, actorId: "test", reason: "x".repeat(500), requestId: null,
      });
      changes++;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(server.app.services.live?.subscriberCount, `after ${changes} changes`).toBe(0);
    (socket as unknown as { _socket: { resume(): void } })._socket.resume();
    expect(await closed).toBe(1013);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/live_balance_slow_consumers_total [1-9]/);
  });
});
