/**
 * Low-balance thresholds end to end: setLowBalanceThreshold, then 200 concurrent 1-credit debits
 * (split over two server instances on PostgreSQL) take a balance of 200 to 0 and a grant brings it
 * back. Exactly one LOW_BALANCE, one BALANCE_DEPLETED and one BALANCE_RECOVERED are stored, served
 * to the owner by creditAlerts, pushed as creditBalanceChanged's `threshold`, and posted once each
 * to a webhook receiver that verifies every signature.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { liveClient, type LiveClient } from "../helpers/live-client.js";
import { adminToken, fundedSubscription, startTestServer, userToken, type TestServer } from "../helpers/test-app.js";
import { startWebhookReceiver } from "../helpers/webhook-receiver.js";

const SECRET = "test-webhook-secret-0123456789abcdef";
const SET_THRESHOLD = `mutation ($input: LowBalanceThresholdInput!) { setLowBalanceThreshold(input: $input) { type balance lowBalanceThreshold } }`;
const BALANCES = `query ($s: ID!) { subscription(id: $s) { balances { type balance lowBalanceThreshold } } }`;
const SEARCH_LEADS = `mutation ($s: ID!) { searchLeads(subscriptionId: $s, input: { query: "roofers", limit: 1 }) { total } }`;
const GRANT = `mutation ($s: ID!) { grantCredits(input: { subscriptionId: $s, type: "leads", amount: 60, reason: "top-up" }) { id } }`;
const ALERTS = `query ($s: ID) { creditAlerts(subscriptionId: $s) { edges { node { id kind subscriptionId message details createdAt } } } }`;
const EVENTS = `subscription ($s: ID!) { creditBalanceChanged(subscriptionId: $s, types: ["leads"]) { balance threshold lastEntry { id } } }`;

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe.each(BACKENDS)("low-balance thresholds on %s", (backend) => {
  let database: TestDatabase;
  let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;
  const servers: TestServer[] = [];
  let live: LiveClient | undefined;

  beforeAll(async () => {
    database = await createTestDatabase(backend);
    receiver = await startWebhookReceiver(SECRET);
    const env = { RATE_LIMIT_DEFAULT: "100000/1m", ALERT_WEBHOOK_URL: receiver.url, ALERT_WEBHOOK_SECRET: SECRET };
    servers.push(await startTestServer({ database, env }));
    if (backend === "postgres") servers.push(await startTestServer({ database, env }));
  });
  afterAll(async () => {
    await live?.dispose().catch(() => undefined);
    for (const server of servers) await server.close();
    await receiver?.close();
    await database?.dispose();
  });

  it("checks who sets a threshold and what it is", async () => {
    const s = await fundedSubscription(database, "threshold-args", { leads: 10 });
    const [server] = servers;
    const owner = await userToken("threshold-args");
    const cases: [Record<string, unknown>, string | undefined, string][] = [
      [{ subscriptionId: s, type: "leads", lowBalance: 5 }, await userToken("stranger"), "FORBIDDEN"],
      [{ subscriptionId: s, type: "leads", lowBalance: 5 }, undefined, "UNAUTHENTICATED"],
      [{ subscriptionId: s, type: "gold", lowBalance: 5 }, owner, "BAD_USER_INPUT"],
      [{ subscriptionId: s, type: "leads", lowBalance: -1 }, owner, "BAD_USER_INPUT"],
      [{ subscriptionId: "00000000-0000-4000-8000-000000000000", type: "leads", lowBalance: 5 }, owner, "NOT_FOUND"],
    ];
    for (const [input, token, code] of cases) {
      const res = await server.gql(SET_THRESHOLD, { input }, { token });
      expect(res.body.errors?.[0].extensions.code, JSON.stringify(input)).toBe(code);
    }
    const set = await server.gql(SET_THRESHOLD, { input: { subscriptionId: s, type: "leads", lowBalance: 5 } }, { token: owner });
    expect(set.body.data.setLowBalanceThreshold).toEqual({ type: "leads", balance: 10, lowBalanceThreshold: 5 });
    const read = await server.gql(BALANCES, { s }, { token: owner });
    expect(read.body.data.subscription.balances).toContainEqual({ type: "leads", balance: 10, lowBalanceThreshold: 5 });
    expect(read.body.data.subscription.balances).toContainEqual({ type: "ai", balance: 0, lowBalanceThreshold: null });
    const off = await server.gql(SET_THRESHOLD, { input: { subscriptionId: s, type: "leads", lowBalance: 0 } }, { token: await adminToken() });
    expect(off.body.data.setLowBalanceThreshold.lowBalanceThreshold).toBeNull();
  });

  // DESIGN.md: LOW_BALANCE "when a change takes a balance from at or above its low-balance threshold
  // to below it": reaching the threshold is not below it.
  it("raises no LOW_BALANCE for a balance that comes down to its threshold, and one when it goes below", async () => {
    const owner = "threshold-boundary";
    const token = await userToken(owner);
    const s = await fundedSubscription(database, owner, { leads: 6 });
    const [server] = servers;
    expect((await server.gql(SET_THRESHOLD, { input: { subscriptionId: s, type: "leads", lowBalance: 5 } }, { token })).body.errors).toBeUndefined();
    const lowAlerts = async () => {
      const res = await server.gql(ALERTS, { s }, { token });
      return res.body.data.creditAlerts.edges.map((e: any) => e.node).filter((n: any) => n.kind === "LOW_BALANCE");
    };

    const atThreshold = await server.gql(SEARCH_LEADS, { s }, { token });
    expect(atThreshold.body.errors).toBeUndefined();
    expect(atThreshold.body.extensions!.credits.charges[0]).toMatchObject({ cost: 1, remaining: 5 });
    const below = await server.gql(SEARCH_LEADS, { s }, { token });
    expect(below.body.errors).toBeUndefined();
    expect(below.body.extensions!.credits.charges[0]).toMatchObject({ cost: 1, remaining: 4 });

    await until(async () => (await lowAlerts()).length > 0);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const alerts = await lowAlerts();
    expect(alerts).toHaveLength(1);
    expect(alerts[0].details).toMatchObject({ creditType: "leads", threshold: 5, balance: 4, previousBalance: 5 });
  });

  it("raises each crossing exactly once under 200 concurrent debits, and a recovery after a grant", { timeout: 120_000 }, async () => {
    const owner = "threshold-owner";
    const token = await userToken(owner);
    const s = await fundedSubscription(database, owner, { leads: 200 });
    const set = await servers[0].gql(SET_THRESHOLD, { input: { subscriptionId: s, type: "leads", lowBalance: 50 } }, { token });
    expect(set.body.errors).toBeUndefined();

    live = liveClient(servers[servers.length - 1].url, token);
    const events = live.subscribe(EVENTS, { s });
    await new Promise((resolve) => setTimeout(resolve, 300));

    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => servers[i % servers.length].gql(SEARCH_LEADS, { s }, { token })),
    );
    expect(results.filter((r) => r.body.errors).map((r) => r.body.errors)).toEqual([]);
    await events.waitFor((r) => r.data?.creditBalanceChanged.balance === 0);
    expect((await servers[0].gql(SEARCH_LEADS, { s }, { token })).status).toBe(402);

    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await servers[0].gql(GRANT, { s }, { token: await adminToken() })).body.errors).toBeUndefined();
    const recovered = await events.waitFor((r) => r.data?.creditBalanceChanged.threshold === "BALANCE_RECOVERED");
    expect(recovered.data.creditBalanceChanged.balance).toBe(60);
    // The fall to 0 was pushed with its crossing (coalesced events carry the last one: DEPLETED).
    expect(events.received.some((r) => ["LOW_BALANCE", "BALANCE_DEPLETED"].includes(r.data?.creditBalanceChanged.threshold))).toBe(true);

    const alerts = await servers[0].gql(ALERTS, { s }, { token });
    const nodes = alerts.body.data.creditAlerts.edges.map((e: any) => e.node);
    expect(nodes.map((n: any) => n.kind)).toEqual(["BALANCE_RECOVERED", "BALANCE_DEPLETED", "LOW_BALANCE"]);
    expect(nodes[2].details).toMatchObject({ creditType: "leads", threshold: 50, balance: 49, previousBalance: 50 });
    expect(nodes[1].details).toMatchObject({ creditType: "leads", balance: 0, previousBalance: 1 });
    expect(nodes[0].details).toMatchObject({ creditType: "leads", balance: 60, previousBalance: 0 });

    // Posted once each (whichever instance claimed it), every post signed, the body as creditAlerts serves it.
    await until(() => receiver.posts.filter((p) => p.body.subscriptionId === s).length >= 3);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const posts = receiver.posts.filter((p) => p.body.subscriptionId === s);
    expect(posts).toHaveLength(3);
    expect(posts.every((p) => p.signatureValid)).toBe(true);
    expect(posts.map((p) => p.body).sort((a, b) => a.kind.localeCompare(b.kind))).toEqual(
      [...nodes].sort((a: any, b: any) => a.kind.localeCompare(b.kind)),
    );
  });
});
