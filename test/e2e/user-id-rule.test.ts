/**
 * A user id is one thing under one rule (src/util/text.ts): a token's `sub` (DESIGN.md,
 * "Authentication": "`sub` is the user id") and createSubscription's `ownerId` ("Subject (user id)
 * of the owner"). Every id a token may sign in with is one an admin can open a subscription for,
 * which that token then sees; every id one refuses, the other refuses too: 401 UNAUTHENTICATED for
 * the token, 400 BAD_USER_INPUT naming ownerId for the admin, and nothing is trimmed. The audit
 * (REPORT.md, finding 1) found subjects of 201–255 characters and blank ones (spaces, U+00A0,
 * U+200B) signing in but never owning a subscription, and ownerId " bob-trim " stored as "bob-trim",
 * out of sight of the user whose sub is " bob-trim ".
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPgliteDatabase, type TestDatabase } from "../helpers/databases.js";
import { adminToken, startTestServer, userToken, type TestServer } from "../helpers/test-app.js";

const CREATE = `mutation ($input: CreateSubscriptionInput!) { createSubscription(input: $input) { id ownerId } }`;
const VIEWER = `query { viewer { id subscriptions { id } } }`;
const SEARCH = `query ($filter: SubscriptionFilter) { subscriptions(filter: $filter, first: 10) { edges { node { id ownerId } } } }`;

describe("one rule for a token's sub and createSubscription's ownerId", () => {
  let database: TestDatabase;
  let server: TestServer;
  let admin: string;

  beforeAll(async () => {
    database = await createPgliteDatabase();
    server = await startTestServer({ database, env: { RATE_LIMIT_DEFAULT: "10000/1m" } });
    admin = await adminToken("user-id-admin");
  }, 120_000);
  afterAll(async () => {
    await server?.close();
    await database?.dispose();
  });

  const create = (ownerId: string) => server.gql(CREATE, { input: { ownerId, plan: "test" } }, { token: admin });

  it.each([
    ["255 characters", "u".repeat(255)],
    ["201 characters", "v".repeat(201)],
    ["Unicode", "алиса-😀"],
    ["an inner space", "ann lee"],
    ["an emoji ending in a variation selector", "ann❤️"],
  ])("an id of %s: signs in, can be given a subscription, and sees it", async (_label, id) => {
    const opened = await create(id);
    expect(opened.body.errors).toBeUndefined();
    expect(opened.body.data.createSubscription.ownerId).toBe(id);

    const seen = await server.gql(VIEWER, {}, { token: await userToken(id) });
    expect(seen.status).toBe(200);
    expect(seen.body.data.viewer).toEqual({ id, subscriptions: [{ id: opened.body.data.createSubscription.id }] });

    const found = await server.gql(SEARCH, { filter: { ownerId: id } }, { token: admin });
    expect(found.body.errors).toBeUndefined();
    expect(found.body.data.subscriptions.edges.map((e: { node: { id: string } }) => e.node.id)).toEqual([opened.body.data.createSubscription.id]);
  });

  it.each([
    ["256 characters", "u".repeat(256), /at most 255 characters/],
    ["spaces only", "   ", /blank/],
    ["a no-break space only", "\u00a0", /blank/],
    ["a zero-width space only", "\u200b", /blank/],
    ["invisible characters only", "\u2060\ufeff\u200d", /blank/],
    ["a leading and a trailing space", " bob-trim ", /white space/],
    ["a trailing space", "bob-trim ", /white space/],
    ["a leading no-break space", "\u00a0bob", /white space/],
    ["a control character", "bob\u0007", /control characters/],
  ])("an id of %s: 401 as a sub, 400 naming ownerId as an ownerId, and nothing opened", async (_label, id, problem) => {
    const signIn = await server.gql(VIEWER, {}, { token: await userToken(id) });
    expect(signIn.status).toBe(401);
    expect(signIn.body.errors?.[0].extensions.code).toBe("UNAUTHENTICATED");
    expect(signIn.body.errors?.[0].message).toMatch(/^Invalid token: the sub claim /);
    expect(signIn.body.errors?.[0].message).toMatch(problem);

    const opened = await create(id);
    expect(opened.status).toBe(400);
    expect(opened.body.errors?.[0].extensions.code).toBe("BAD_USER_INPUT");
    expect(opened.body.errors?.[0].extensions.field).toBe("ownerId");
    expect(opened.body.errors?.[0].message).toMatch(/^ownerId /);
    expect(opened.body.errors?.[0].message).toMatch(problem);
    expect(opened.body.data).toBeNull();
  });

  it("does not trim an ownerId into another user's id", async () => {
    const opened = await create(" bob-trim ");
    expect(opened.body.errors?.[0].message).toBe("ownerId must not start or end with white space: give the user id exactly as its token's sub has it");
    const bob = await server.gql(SEARCH, { filter: { ownerId: "bob-trim" } }, { token: admin });
    expect(bob.body.data.subscriptions.edges).toEqual([]);
  });

  it("searches take the same longest id: an ownerId filter or search prefix of 255 characters, not 256", async () => {
    const id = "w".repeat(255);
    const opened = await create(id);
    expect(opened.body.errors).toBeUndefined();
    const byPrefix = await server.gql(SEARCH, { filter: { search: id } }, { token: admin });
    expect(byPrefix.body.errors).toBeUndefined();
    expect(byPrefix.body.data.subscriptions.edges.map((e: { node: { ownerId: string } }) => e.node.ownerId)).toEqual([id]);
    for (const filter of [{ ownerId: "w".repeat(256) }, { search: "w".repeat(256) }]) {
      const res = await server.gql(SEARCH, { filter }, { token: admin });
      expect(res.status).toBe(400);
      expect(res.body.errors?.[0].extensions.code).toBe("BAD_USER_INPUT");
      expect(res.body.errors?.[0].message).toMatch(/at most 255 characters/);
    }
  });
});
