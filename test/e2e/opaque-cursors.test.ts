/**
 * creditLedger and creditAlerts cursors tell an owner nothing about other customers (an outside
 * audit). They were the base64url of a listing name and the row's seq, a number every customer's
 * rows share: the gap between two of an owner's consecutive cursors was the number of entries all
 * other customers wrote meanwhile (bob made 5 calls, alice's cursor jumped from ledger:69 to
 * ledger:75), and alert cursors leaked the platform's alert volume the same way. A cursor now names
 * the row by its id, which the owner already reads in the node; the listing still pages by seq.
 */
import { randomUUID } from "node:crypto";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { adminToken, fundedSubscription, startTestServer, userToken, type TestServer } from "../helpers/test-app.js";

const ALICE = "opaque-cursors-alice";
const BOB = "opaque-cursors-bob";

const LEDGER = `query ($s: ID, $first: Int, $after: String) {
  creditLedger(subscriptionId: $s, first: $first, after: $after) {
    edges { cursor node { id subscriptionId } }
    pageInfo { hasNextPage endCursor }
  }
}`;
const ALERTS = `query ($s: ID, $first: Int, $after: String) {
  creditAlerts(subscriptionId: $s, first: $first, after: $after) {
    edges { cursor node { id subscriptionId } }
    pageInfo { hasNextPage endCursor }
  }
}`;
const GRANT = `mutation ($input: GrantCreditsInput!) { grantCredits(input: $input) { id } }`;

interface Edge {
  cursor: string;
  node: { id: string; subscriptionId: string | null };
}
interface Connection {
  edges: Edge[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

/** What anyone can read out of a cursor: its base64url text decoded. */
const decoded = (cursor: string) => Buffer.from(cursor, "base64url").toString("utf8");

describe.each(BACKENDS)("opaque ledger and alert cursors on %s", (backend) => {
  let database: TestDatabase;
  let server: TestServer;
  let admin: string;
  let alice: string;
  let bob: string;
  let aliceSubscription: string;
  let bobSubscription: string;

  beforeAll(async () => {
    database = await createTestDatabase(backend);
    server = await startTestServer({ database });
    admin = await adminToken();
    alice = await userToken(ALICE);
    bob = await userToken(BOB);
    aliceSubscription = await fundedSubscription(database, ALICE, { leads: 10 });
    bobSubscription = await fundedSubscription(database, BOB, { leads: 10 });
  }, 120_000);
  afterAll(async () => {
    await server?.close();
    await database?.dispose();
  });

  /** One ledger entry on the subscription, written over HTTP as an admin's grant. */
  const grant = async (subscriptionId: string) => {
    const response = await server.gql(GRANT, { input: { subscriptionId, type: "leads", amount: 1, reason: "opaque cursors" } }, { token: admin });
    expect(response.body.errors).toBeUndefined();
  };
  /** One alert about the subscription (balance alerts and anomalies are stored the same way). */
  const raiseAlert = async (subscriptionId: string) => {
    await database.db.execute(sql`
      insert into credit_alerts (id, subscription_id, kind, message, details)
      values (${randomUUID()}::uuid, ${subscriptionId}::uuid, 'USAGE_SPIKE', 'opaque cursors', '{}'::jsonb)`);
  };
  const read = async (query: string, field: "creditLedger" | "creditAlerts", token: string, variables: Record<string, unknown>) => {
    const response = await server.gql(query, variables, { token });
    return { response, page: response.body.data?.[field] as Connection | undefined };
  };
  const ledgerOf = (token: string, variables: Record<string, unknown>) => read(LEDGER, "creditLedger", token, variables);
  const alertsOf = (token: string, variables: Record<string, unknown>) => read(ALERTS, "creditAlerts", token, variables);
  /** Every edge of a listing, `first` at a time, calling `between` after each page. */
  const walk = async (list: typeof ledgerOf, token: string, variables: Record<string, unknown>, between: () => Promise<void>) => {
    const edges: Edge[] = [];
    let after: string | null = null;
    for (;;) {
      const { response, page } = await list(token, { ...variables, after });
      expect(response.body.errors).toBeUndefined();
      edges.push(...page!.edges);
      if (!page!.pageInfo.hasNextPage) return edges;
      after = page!.pageInfo.endCursor;
      await between();
    }
  };
  const expectNotACursor = (response: Awaited<ReturnType<typeof ledgerOf>>["response"]) => {
    expect([response.status, response.body.errors?.[0]?.extensions.code, response.body.errors?.[0]?.extensions.field, response.body.errors?.[0]?.message]).toEqual([
      400,
      "BAD_USER_INPUT",
      "after",
      "after is not a cursor of this listing: pass the endCursor or an edge's cursor from a previous page",
    ]);
    expect(response.body.data?.creditLedger ?? response.body.data?.creditAlerts ?? null).toBeNull();
  };

  it("an owner's ledger cursors carry nothing but the entry's own id, whatever other customers wrote between", async () => {
    await grant(aliceSubscription);
    const before = (await ledgerOf(alice, { s: aliceSubscription, first: 50 })).page!;
    // Bob's five entries fall between two of Alice's.
    for (let i = 0; i < 5; i++) await grant(bobSubscription);
    await grant(aliceSubscription);
    const after = (await ledgerOf(alice, { s: aliceSubscription, first: 50 })).page!;

    // Nothing in a cursor beyond what the node shows: no number that could count Bob's entries.
    for (const edge of after.edges) expect(decoded(edge.cursor).replace(edge.node.id, "")).not.toMatch(/[0-9]/);
    // An entry's cursor text did not move when Bob wrote.
    expect(after.edges.slice(1)).toEqual(before.edges);
  });

  it("an owner's alert cursors carry nothing but the alert's own id", async () => {
    await raiseAlert(aliceSubscription);
    for (let i = 0; i < 3; i++) await raiseAlert(bobSubscription);
    await raiseAlert(aliceSubscription);
    const { page } = await alertsOf(alice, { s: aliceSubscription, first: 50 });
    expect(page!.edges.length).toBeGreaterThanOrEqual(2);
    for (const edge of page!.edges) expect(decoded(edge.cursor).replace(edge.node.id, "")).not.toMatch(/[0-9]/);
  });

  it("refuses, as not a cursor of the listing, a cursor of another subscription's row or of no row", async () => {
    await grant(bobSubscription);
    await raiseAlert(bobSubscription);
    const bobsEntry = (await ledgerOf(bob, { s: bobSubscription, first: 1 })).page!.pageInfo.endCursor!;
    const bobsAlert = (await alertsOf(bob, { s: bobSubscription, first: 1 })).page!.pageInfo.endCursor!;
    const noEntry = Buffer.from(`ledger:${randomUUID()}`).toString("base64url");
    const noAlert = Buffer.from(`alerts:${randomUUID()}`).toString("base64url");

    for (const token of [alice, admin]) {
      for (const after of [bobsEntry, noEntry]) expectNotACursor((await ledgerOf(token, { s: aliceSubscription, first: 5, after })).response);
      for (const after of [bobsAlert, noAlert]) expectNotACursor((await alertsOf(token, { s: aliceSubscription, first: 5, after })).response);
    }
    // Across subscriptions the admin's listing holds Bob's row, but never a row that does not exist.
    expect((await ledgerOf(admin, { first: 1, after: bobsEntry })).response.body.errors).toBeUndefined();
    expectNotACursor((await ledgerOf(admin, { first: 1, after: noEntry })).response);
    expectNotACursor((await alertsOf(admin, { first: 1, after: noAlert })).response);
    // An uppercase id names the same row but is not the spelling this server hands out.
    const shouted = Buffer.from(decoded(bobsEntry).toUpperCase().replace("LEDGER:", "ledger:")).toString("base64url");
    expectNotACursor((await ledgerOf(bob, { s: bobSubscription, first: 1, after: shouted })).response);
  });

  it("an owner's paging walks every entry once, newest first, while both customers write", async () => {
    for (let i = 0; i < 7; i++) await grant(aliceSubscription);
    const present = (await ledgerOf(alice, { s: aliceSubscription, first: 1_000 })).page!.edges.map((e) => e.node.id);
    const walked = await walk(ledgerOf, alice, { s: aliceSubscription, first: 2 }, async () => {
      await grant(aliceSubscription);
      await grant(bobSubscription);
    });
    expect(walked.map((e) => e.node.id)).toEqual(present);
  });

  it("an owner's alert paging walks every alert once while alerts arrive", async () => {
    for (let i = 0; i < 5; i++) await raiseAlert(aliceSubscription);
    const present = (await alertsOf(alice, { s: aliceSubscription, first: 1_000 })).page!.edges.map((e) => e.node.id);
    const walked = await walk(alertsOf, alice, { s: aliceSubscription, first: 2 }, async () => {
      await raiseAlert(aliceSubscription);
      await raiseAlert(bobSubscription);
    });
    expect(walked.map((e) => e.node.id)).toEqual(present);
  });

  it("an admin's listings across subscriptions page every row once, newest first, while rows arrive", async () => {
    const ledger = (await ledgerOf(admin, { first: 1_000 })).page!.edges.map((e) => e.node);
    expect(new Set(ledger.map((n) => n.subscriptionId))).toEqual(new Set([aliceSubscription, bobSubscription]));
    const walkedLedger = await walk(ledgerOf, admin, { first: 3 }, async () => {
      await grant(bobSubscription);
      await grant(aliceSubscription);
    });
    expect(walkedLedger.map((e) => e.node)).toEqual(ledger);

    const alerts = (await alertsOf(admin, { first: 1_000 })).page!.edges.map((e) => e.node);
    const walkedAlerts = await walk(alertsOf, admin, { first: 3 }, async () => {
      await raiseAlert(bobSubscription);
      await raiseAlert(aliceSubscription);
    });
    expect(walkedAlerts.map((e) => e.node)).toEqual(alerts);
  });
});
