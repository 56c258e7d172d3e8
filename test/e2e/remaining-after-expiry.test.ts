/**
 * `extensions.credits.remaining` in the window between a grant's expiry and the expiry pass that
 * removes what is left of it (an outside audit): the balance (`CreditBalance.balance`, the preview,
 * a 402's `available`) leaves those credits out, and so did a call settled at its hold, but a call
 * that ended with a RELEASE reported the balance row, expired credits included (12 where the balance
 * was 4), and so did an idempotent replay. All of them now report credits available.
 * The expiry pass is kept away (RECOVERY_INTERVAL 1h) so that the window stays open.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { setTimeout as sleep } from "node:timers/promises";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { adminToken, startTestServer, userToken, type TestServer } from "../helpers/test-app.js";

const OWNER = "expiry-remaining-owner";
const CREATE = `mutation ($ownerId: ID!) { createSubscription(input: { ownerId: $ownerId, plan: "none" }) { id } }`;
const GRANT = `mutation ($input: GrantCreditsInput!) { grantCredits(input: $input) { id } }`;
const RUN_AI = `mutation ($sub: ID!) { runAiTask(subscriptionId: $sub, input: { prompt: "hi", maxTokens: 2000 }) { tokensUsed } }`;
const BALANCE = `query ($id: ID!) { subscription(id: $id) { balances { type balance } } }`;

describe.each(BACKENDS)("remaining after a grant expired, before the expiry pass, on %s", (backend) => {
  let database: TestDatabase;
  let server: TestServer;
  let admin: string;
  let owner: string;

  beforeAll(async () => {
    admin = await adminToken("expiry-remaining-admin");
    owner = await userToken(OWNER);
    database = await createTestDatabase(backend);
    server = await startTestServer({ database, env: { RECOVERY_INTERVAL: "1h" } });
  }, 120_000);
  afterAll(async () => {
    await server?.close();
    await database?.dispose();
  });

  async function gql(query: string, variables: Record<string, unknown>, token: string, headers: Record<string, string> = {}) {
    const res = await server.gql(query, variables, { token, headers });
    expect(res.body.errors, JSON.stringify(res.body.errors)).toBeUndefined();
    return res.body;
  }

  const aiBalance = async (id: string): Promise<number> =>
    (await gql(BALANCE, { id }, admin)).data.subscription.balances.find((b: { type: string }) => b.type === "ai").balance;

  it("is the balance available, for a call that released, one settled at its hold and a replay", async () => {
    const sub = (await gql(CREATE, { ownerId: OWNER }, admin)).data.createSubscription.id;
    await gql(GRANT, { input: { subscriptionId: sub, type: "ai", amount: 6, reason: "paid" } }, admin);
    const expiresAt = new Date(Date.now() + 1_500).toISOString();
    await gql(GRANT, { input: { subscriptionId: sub, type: "ai", amount: 10, reason: "promo", category: "PROMOTIONAL", priority: 1, expiresAt } }, admin);
    await sleep(Date.parse(expiresAt) - Date.now() + 200);
    expect(await aiBalance(sub)).toBe(6);

    // Holds 3 for 2,000 tokens and settles at the tokens used: the rest is released.
    const released = await gql(RUN_AI, { sub }, owner, { "idempotency-key": "expiry-remaining-1" });
    const charge = released.extensions!.credits.charges[0];
    expect(charge).toMatchObject({ charged: 3, released: expect.any(Number) });
    expect(charge.released).toBeGreaterThan(0);
    const afterRelease = await aiBalance(sub);
    expect(afterRelease).toBe(6 - charge.cost);
    expect(charge.remaining).toBe(afterRelease);
    expect(released.extensions!.credits.remaining).toEqual({ [sub]: { ai: afterRelease } });

    // A replay reports the balance as it is now: after another grant, the same credits available.
    await gql(GRANT, { input: { subscriptionId: sub, type: "ai", amount: 7, reason: "more" } }, admin);
    const replay = await gql(RUN_AI, { sub }, owner, { "idempotency-key": "expiry-remaining-1" });
    expect(replay.extensions!.credits.charges[0]).toMatchObject({ replayed: true, remaining: afterRelease + 7 });
    expect(await aiBalance(sub)).toBe(afterRelease + 7);
  });
});
