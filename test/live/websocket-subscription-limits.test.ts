/**
 * What one caller can make a live-balance instance do (an outside security audit): one customer's
 * socket ran 3,353 subscriptions of its own balance, and each change of that balance was one
 * execution per subscription (each reading the entry's draws again); one free call (held, then
 * refunded as not delivered) kept /health waiting for seconds. Now:
 * - a caller runs at most LIVE_MAX_SUBSCRIPTIONS_PER_CALLER subscriptions on an instance, over all
 *   its sockets; past it, RATE_LIMITED for that subscribe alone. The first ones to arrive are the
 *   ones run, a burst sent without waiting included (a second audit: of 101 subscribes sent in one
 *   go 1 was run, of 150 only 7, the subscribes still being started counted against the cap);
 * - a connection_init counts against REQUEST_LIMIT like an HTTP request (past it a close with 1013,
 *   "try again later", which graphql-ws's client retries; its own 4429 it never retried);
 * - the draws of an event's entry are read once however many subscribers ask for them.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createClient } from "graphql-ws";
import WebSocket from "ws";
import * as grantStore from "../../src/grants/grant-store.js";
import { changeBalance } from "../../src/ledger/change-balance.js";
import type { LiveBalance } from "../../src/live/live-balance.js";
import { createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { fundedSubscription, startTestServer, userToken, type TestServer } from "../helpers/test-app.js";
import { openRawSocket, type Message, type RawGraphQLSocket } from "./raw-graphql-ws.js";

vi.mock("../../src/grants/grant-store.js", async (importOriginal) => {
  const original = await importOriginal<typeof import("../../src/grants/grant-store.js")>();
  return { ...original, drawsOfEntries: vi.fn(original.drawsOfEntries) };
});

const BALANCE = `subscription ($s: ID!) { creditBalanceChanged(subscriptionId: $s) { balance } }`;
const BALANCE_WITH_DRAWS = `subscription ($s: ID!) { creditBalanceChanged(subscriptionId: $s) { balance lastEntry { id draws { grantId amount } } } }`;

const charge = (database: TestDatabase, subscriptionId: string) =>
  changeBalance(database.db, { subscriptionId, creditType: "leads", kind: "ADJUSTMENT", delta: -1, actorId: "test", reason: "limits", requestId: null });

/** The first message for operation `id` that ends or answers it: `next` (it runs) or `error` (refused). */
async function answerTo(socket: RawGraphQLSocket, id: string): Promise<Message> {
  return socket.waitFor((m) => m.id === id && (m.type === "error" || m.type === "next"), 10_000);
}

/** A socket's connection_init with `authorization`, and how the server answered it: ack or a close. */
async function connectionInit(httpUrl: string, authorization: string): Promise<{ acked: boolean; code?: number; reason?: string }> {
  const ws = new WebSocket(httpUrl.replace(/^http/, "ws") + "/graphql", "graphql-transport-ws");
  ws.on("error", () => undefined);
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  ws.send(JSON.stringify({ type: "connection_init", payload: { authorization } }));
  return new Promise((resolve) => {
    ws.on("message", (data) => {
      if ((JSON.parse(String(data)) as Message).type === "connection_ack") {
        resolve({ acked: true });
        ws.close();
      }
    });
    ws.once("close", (code, reason) => resolve({ acked: false, code, reason: reason.toString() }));
  });
}

describe("what one caller may run on a live-balance instance", () => {
  let database: TestDatabase;
  let server: TestServer;
  let subscriptionId: string;
  const sockets: RawGraphQLSocket[] = [];

  beforeAll(async () => {
    database = await createTestDatabase("pglite");
    server = await startTestServer({
      database,
      env: { BALANCE_PUSH_INTERVAL: "1ms", LIVE_MAX_SUBSCRIPTIONS_PER_CALLER: "3", REQUEST_LIMIT: "12/1m" },
    });
    subscriptionId = await fundedSubscription(database, "limits-owner", { leads: 1_000 });
  }, 120_000);
  afterAll(async () => {
    for (const socket of sockets) socket.terminate();
    await server?.close();
    await database?.dispose();
  });

  /** Waits until this instance runs `count` live-balance subscriptions (a change before would not reach them). */
  async function subscribers(count: number): Promise<void> {
    await expect.poll(() => (server.app.services.live as LiveBalance).subscriberCount, { timeout: 10_000 }).toBe(count);
  }

  async function socketOf(sub: string): Promise<RawGraphQLSocket> {
    const socket = await openRawSocket(server.url, await userToken(sub));
    sockets.push(socket);
    return socket;
  }

  it("runs at most LIVE_MAX_SUBSCRIPTIONS_PER_CALLER subscriptions per caller, over all its sockets; others are not affected", async () => {
    const first = await socketOf("limits-owner");
    const second = await socketOf("limits-owner");
    for (const id of ["a", "b"]) first.subscribe(id, BALANCE, { s: subscriptionId });
    second.subscribe("c", BALANCE, { s: subscriptionId });
    await subscribers(3);
    await charge(database, subscriptionId);
    for (const [socket, id] of [[first, "a"], [first, "b"], [second, "c"]] as const) expect((await answerTo(socket, id)).type).toBe("next");

    // A fourth, on either socket, is refused alone: the other three go on.
    second.subscribe("d", BALANCE, { s: subscriptionId });
    const refused = await answerTo(second, "d");
    expect(refused.type).toBe("error");
    expect(refused.payload[0]).toMatchObject({
      message: expect.stringContaining("at most 3 per caller"),
      extensions: { code: "RATE_LIMITED", retryAfterSeconds: expect.any(Number) },
    });
    expect(second.ws.readyState).toBe(WebSocket.OPEN);

    // Completing one makes room for another.
    first.send({ id: "a", type: "complete" });
    await subscribers(2);
    second.subscribe("e", BALANCE, { s: subscriptionId });
    await subscribers(3);
    await charge(database, subscriptionId);
    expect((await answerTo(second, "e")).type).toBe("next");

    // A socket that closes gives its subscriptions back.
    first.terminate();
    await first.closed;
    await subscribers(2);
    second.subscribe("f", BALANCE, { s: subscriptionId });
    await subscribers(3);
    await charge(database, subscriptionId);
    expect((await answerTo(second, "f")).type).toBe("next");

    // Another caller (an admin following the same subscription) counts on its own.
    const otherSubscription = await fundedSubscription(database, "limits-other", { leads: 10 });
    const other = await socketOf("limits-other");
    other.subscribe("x", BALANCE, { s: otherSubscription });
    await subscribers(4);
    await charge(database, otherSubscription);
    expect((await answerTo(other, "x")).type).toBe("next");
  });

  it("reads an event's draws once, however many subscribers ask for them", async () => {
    const owner = "limits-draws";
    const drawsSubscription = await fundedSubscription(database, owner, { leads: 1_000 });
    const socket = await socketOf(owner);
    const before = (server.app.services.live as LiveBalance).subscriberCount;
    for (const id of ["1", "2", "3"]) socket.subscribe(id, BALANCE_WITH_DRAWS, { s: drawsSubscription });
    await subscribers(before + 3);
    const drawsOfEntries = vi.mocked(grantStore.drawsOfEntries);
    drawsOfEntries.mockClear();
    const entry = await charge(database, drawsSubscription);
    // The event of this entry (the funding grant's may still be on its way to the subscribers on a
    // loaded machine, and is pushed first then).
    const events = await Promise.all(
      ["1", "2", "3"].map((id) =>
        socket.waitFor((m) => m.id === id && m.type === "next" && m.payload.data.creditBalanceChanged.lastEntry.id === entry.id, 10_000),
      ),
    );
    for (const event of events) {
      expect(event.payload.data.creditBalanceChanged.lastEntry.draws).toEqual([{ grantId: expect.any(String), amount: 1 }]);
    }
    const readsOfThisEntry = drawsOfEntries.mock.calls.filter(([, entries]) => entries.some((e) => e.entryId === entry.id));
    expect(readsOfThisEntry).toHaveLength(1);
  });

  it("answers a caller at the cap for what it sent: a query, a mutation or a bad document is BAD_USER_INPUT, only a subscription is RATE_LIMITED", async () => {
    // An outside audit: at the cap, a mutation sent over the socket was refused as RATE_LIMITED (come
    // back later), when it is refused anywhere (send it over HTTP).
    const owner = "limits-at-cap";
    const ownSubscription = await fundedSubscription(database, owner, { leads: 10 });
    const socket = await socketOf(owner);
    const before = (server.app.services.live as LiveBalance).subscriberCount;
    for (const id of ["1", "2", "3"]) socket.subscribe(id, BALANCE, { s: ownSubscription });
    await subscribers(before + 3);

    socket.subscribe("mutation", `mutation ($s: ID!) { searchLeads(subscriptionId: $s, input: { query: "x", limit: 1 }) { total } }`, { s: ownSubscription });
    expect((await answerTo(socket, "mutation")).payload[0]).toMatchObject({
      message: expect.stringContaining("Only subscriptions are served over WebSocket"),
      extensions: { code: "BAD_USER_INPUT" },
    });
    socket.subscribe("broken", "subscription { creditBalanceChanged(", {});
    expect((await answerTo(socket, "broken")).payload[0]).toMatchObject({ extensions: { code: "BAD_USER_INPUT", reason: "GRAPHQL_PARSE_FAILED" } });
    socket.subscribe("fourth", BALANCE, { s: ownSubscription });
    expect((await answerTo(socket, "fourth")).payload[0]).toMatchObject({ extensions: { code: "RATE_LIMITED" } });
  });

  it("counts each connection_init against REQUEST_LIMIT like a request, bad tokens by address: 1013 past it", async () => {
    // 12 a minute per caller: a dozen bad tokens from this address are let through (and refused 4401)…
    const outcomes = [];
    for (let i = 0; i < 13; i++) outcomes.push(await connectionInit(server.url, "Bearer not-a-token"));
    expect(outcomes.slice(0, 12).map((o) => o.code)).toEqual(Array(12).fill(4401));
    // …the thirteenth is over the limit, before its token is looked at.
    expect(outcomes[12]).toMatchObject({ acked: false, code: 1013, reason: expect.stringMatching(/^Too many requests: .*try again in \d+ s$/) });
    // A valid token is a caller of its own, and still let in.
    expect(await connectionInit(server.url, `Bearer ${await userToken("limits-fresh")}`)).toEqual({ acked: true });
  });

  it("refuses a connection_init past REQUEST_LIMIT with a close graphql-ws's client retries (with 4429 it gave up at once)", async () => {
    const authorization = `Bearer ${await userToken("limits-retrying-client")}`;
    for (let i = 0; i < 12; i++) expect(await connectionInit(server.url, authorization)).toEqual({ acked: true });
    let connecting = 0;
    const closes: number[] = [];
    const client = createClient({
      url: server.url.replace(/^http/, "ws") + "/graphql",
      webSocketImpl: WebSocket,
      connectionParams: { authorization },
      // The documented client's settings (docs/client/example.ts), with short waits.
      retryAttempts: 2,
      shouldRetry: () => true,
      retryWait: () => new Promise((resolve) => setTimeout(resolve, 50)),
      on: { connecting: () => connecting++, closed: (event) => closes.push((event as { code: number }).code) },
    });
    const ended = await new Promise<unknown>((resolve) => {
      client.subscribe({ query: BALANCE, variables: { s: "00000000-0000-4000-8000-000000000000" } }, { next: () => undefined, error: resolve, complete: () => resolve("complete") });
    });
    await client.dispose();
    // Refused each time (the window is a minute), but tried again: the first attempt and two retries.
    expect(closes).toEqual([1013, 1013, 1013]);
    expect(connecting).toBe(3);
    expect((ended as { code?: number }).code).toBe(1013);
  });
});

describe("a burst of subscribes past LIVE_MAX_SUBSCRIPTIONS_PER_CALLER", () => {
  const CAP = 100; // the default
  let database: TestDatabase;
  let server: TestServer;

  beforeAll(async () => {
    database = await createTestDatabase("pglite");
    server = await startTestServer({ database, env: { BALANCE_PUSH_INTERVAL: "1ms" } });
  }, 120_000);
  afterAll(async () => {
    await server?.close();
    await database?.dispose();
  });

  const subscriberCount = () => (server.app.services.live as LiveBalance).subscriberCount;

  /**
   * Sends `count` subscribes on one socket in one go (no wait between them) and returns how each was
   * answered, in the order sent: a refusal at once, a running subscription with the next change of
   * the balance. The socket stays open for more.
   */
  async function burst(caller: string, count: number): Promise<{ socket: RawGraphQLSocket; subscriptionId: string; ids: string[]; answers: Message[] }> {
    const subscriptionId = await fundedSubscription(database, caller, { leads: 1_000 });
    const socket = await openRawSocket(server.url, await userToken(caller));
    const ids = Array.from({ length: count }, (_, i) => `op-${i + 1}`);
    for (const id of ids) socket.subscribe(id, BALANCE, { s: subscriptionId });
    // Every subscribe has been dealt with: refused, or running (its subscriber counted by the hub).
    const refusals = () => socket.messages.filter((m) => m.type === "error").length;
    await expect.poll(() => refusals() + subscriberCount(), { timeout: 10_000 }).toBe(count);
    expect(subscriberCount()).toBe(CAP);
    await charge(database, subscriptionId);
    const answers = await Promise.all(ids.map((id) => answerTo(socket, id)));
    return { socket, subscriptionId, ids, answers };
  }

  function expectFirstAdmitted(ids: string[], answers: Message[]): void {
    const admitted = ids.filter((_, i) => answers[i].type === "next");
    expect(admitted).toEqual(ids.slice(0, CAP));
    for (const refused of answers.slice(CAP)) {
      expect(refused).toMatchObject({
        type: "error",
        payload: [{ message: expect.stringContaining(`at most ${CAP} per caller`), extensions: { code: "RATE_LIMITED", retryAfterSeconds: 30 } }],
      });
    }
  }

  it("runs the first 100 of 101 sent in one go and refuses the last", async () => {
    const { socket, ids, answers } = await burst("burst-101", 101);
    expectFirstAdmitted(ids, answers);
    expect(socket.ws.readyState).toBe(WebSocket.OPEN);
    socket.terminate();
    await expect.poll(subscriberCount, { timeout: 10_000 }).toBe(0);
  });

  it("runs the first 100 of 150 sent in one go, refuses the other 50, and runs one more once one completes", async () => {
    const { socket, subscriptionId, ids, answers } = await burst("burst-150", 150);
    expectFirstAdmitted(ids, answers);

    socket.send({ id: "op-1", type: "complete" });
    await expect.poll(subscriberCount, { timeout: 10_000 }).toBe(CAP - 1);
    socket.subscribe("op-151", BALANCE, { s: subscriptionId });
    await expect.poll(subscriberCount, { timeout: 10_000 }).toBe(CAP);
    await charge(database, subscriptionId);
    expect((await answerTo(socket, "op-151")).type).toBe("next");
    socket.terminate();
    await expect.poll(subscriberCount, { timeout: 10_000 }).toBe(0);
  });
});
