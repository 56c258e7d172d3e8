/**
 * After a client's `complete` for an operation, no `next` for that id (graphql-ws protocol; an outside
 * audit, on PostgreSQL: one more event arrived after the server's `pong` to a ping sent right after
 * the complete, on 7 of 30 sockets). An event is executed after it is taken from the hub (its
 * `lastEntry { operation }` is one database read); graphql-ws's complete returns the operation's
 * iterator meanwhile, but the execution under way still resolved with its event, which graphql-ws
 * then sent.
 *
 * The first test holds that read until the complete and a ping have been answered (deterministic,
 * on each backend); the second is the audit's own scenario, without holding anything: balances
 * charged concurrently on PostgreSQL while many sockets subscribe and complete.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { changeBalance } from "../../src/ledger/change-balance.js";
import type { LiveBalance } from "../../src/live/live-balance.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { postgresAvailable } from "../helpers/services.js";
import { fundedSubscription, startTestServer, userToken, type TestServer } from "../helpers/test-app.js";
import { openRawSocket, type Message, type RawGraphQLSocket } from "./raw-graphql-ws.js";

// `operation` is not in the notification: each event reads its entry (live.entry) before it is sent.
const BALANCE_WITH_ENTRY = `subscription ($s: ID!) { creditBalanceChanged(subscriptionId: $s) { balance entries lastEntry { id operation } } }`;

const charge = (database: TestDatabase, subscriptionId: string) =>
  changeBalance(database.db, { subscriptionId, creditType: "leads", kind: "ADJUSTMENT", delta: -1, actorId: "test", reason: "complete", requestId: null });

/** The `next` messages for `id` that arrived after the first pong. */
function nextsAfterPong(socket: RawGraphQLSocket, id: string): Message[] {
  const pong = socket.messages.findIndex((m) => m.type === "pong");
  return pong < 0 ? [] : socket.messages.slice(pong + 1).filter((m) => m.id === id && m.type === "next");
}

describe.each(BACKENDS)("a completed live-balance operation on %s", (backend) => {
  let database: TestDatabase;
  let server: TestServer;
  let subscriptionId: string;
  let token: string;

  beforeAll(async () => {
    database = await createTestDatabase(backend);
    server = await startTestServer({ database, env: { BALANCE_PUSH_INTERVAL: "1ms" } });
    subscriptionId = await fundedSubscription(database, "complete-owner", { leads: 1_000_000 });
    token = await userToken("complete-owner");
  }, 120_000);
  afterAll(async () => {
    await server?.close();
    await database?.dispose();
  });

  it("gets no next once its complete was received, even for an event being executed then", { timeout: 60_000 }, async () => {
    const live = server.app.services.live as LiveBalance;
    const readEntry = live.entry.bind(live);
    // Each event's entry read waits for `release`, and says when it started.
    let readStarted: () => void = () => undefined;
    let release: () => void = () => undefined;
    let gate = Promise.resolve();
    live.entry = async (ref) => {
      readStarted();
      await gate;
      return readEntry(ref);
    };
    try {
      for (let round = 0; round < 5; round++) {
        // The previous round's socket is gone on the server too: its `b` would read entries as well.
        await expect.poll(() => live.subscriberCount, { timeout: 10_000 }).toBe(0);
        const socket = await openRawSocket(server.url, token);
        socket.subscribe("a", BALANCE_WITH_ENTRY, { s: subscriptionId });
        socket.subscribe("b", BALANCE_WITH_ENTRY, { s: subscriptionId });
        await expect.poll(() => live.subscriberCount, { timeout: 10_000 }).toBe(2);

        gate = new Promise<void>((resolve) => (release = resolve));
        const reading = new Promise<void>((resolve) => (readStarted = resolve));
        const charged = await charge(database, subscriptionId);
        // The event is being executed for `a` and `b` (each waits on its entry): complete `a` now.
        await reading;
        socket.send({ id: "a", type: "complete" });
        socket.send({ type: "ping" });
        await socket.waitFor((m) => m.type === "pong");
        release();
        // `b` still gets the event; `a` must not.
        await socket.waitFor((m) => m.id === "b" && m.type === "next" && m.payload?.data?.creditBalanceChanged?.lastEntry?.id === charged.id);
        await sleep(50);
        // (An earlier event may have reached `a` before the complete: the subscription's own grant,
        // when its notification comes late. Only what follows the pong is out of protocol.)
        expect(nextsAfterPong(socket, "a"), `round ${round}`).toEqual([]);
        socket.terminate();
        await socket.closed;
      }
    } finally {
      release();
      live.entry = readEntry;
    }
  });
});

describe.skipIf(!postgresAvailable)("completing while balances are charged concurrently (PostgreSQL, the audit's scenario)", () => {
  let database: TestDatabase;
  let server: TestServer;
  let subscriptionId: string;
  let token: string;

  beforeAll(async () => {
    database = await createTestDatabase("postgres");
    server = await startTestServer({ database });
    subscriptionId = await fundedSubscription(database, "complete-load-owner", { leads: 1_000_000 });
    token = await userToken("complete-load-owner");
  }, 120_000);
  afterAll(async () => {
    await server?.close();
    await database?.dispose();
  });

  it("no socket gets a next for an id after the pong that follows its complete", { timeout: 60_000 }, async () => {
    let charging = true;
    const chargers = [0, 1, 2].map(async () => {
      while (charging) await charge(database, subscriptionId);
    });
    const late: { round: number; socket: number; late: number }[] = [];
    try {
      for (let round = 0; round < 3; round++) {
        await Promise.all(
          Array.from({ length: 30 }, async (_, n) => {
            const socket = await openRawSocket(server.url, token);
            socket.subscribe("a", BALANCE_WITH_ENTRY, { s: subscriptionId });
            socket.subscribe("b", BALANCE_WITH_ENTRY, { s: subscriptionId });
            await socket.waitFor((m) => m.id === "a" && m.type === "next");
            await sleep(Math.random() * 200);
            socket.send({ id: "a", type: "complete" });
            socket.send({ type: "ping" });
            await socket.waitFor((m) => m.type === "pong");
            await sleep(400);
            const after = nextsAfterPong(socket, "a");
            if (after.length > 0) late.push({ round, socket: n, late: after.length });
            socket.terminate();
            await socket.closed;
          }),
        );
      }
    } finally {
      charging = false;
      await Promise.all(chargers);
    }
    expect(late).toEqual([]);
  });
});
