/**
 * A variable sent as null where the document needs a value (an outside fuzzing audit). GraphQL lets
 * `$s: ID = "…"` stand for `subscriptionId: ID!`; an explicit `null` passed coercion and was refused
 * only when execution reached that field. The fields before it had run by then: a threshold change
 * committed behind `data: null`, a skip trace held, ran and was refunded as not delivered, and the
 * answer was a masked 500 while creditPreview of the same request said 400. Now the operation is
 * refused as a whole before anything runs, over HTTP and over the socket, the way the preview
 * refuses it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditLedger } from "../../src/ledger/audit.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { fundedSubscription, startTestServer, userToken, type TestServer } from "../helpers/test-app.js";
import { openRawSocket } from "../live/raw-graphql-ws.js";

const OWNER = "null-variables-owner";

const threeFields = (subscriptionId: string) => `mutation ($s: ID = "${subscriptionId}") {
  t: setLowBalanceThreshold(input: { subscriptionId: "${subscriptionId}", type: "leads", lowBalance: 7 }) { lowBalanceThreshold }
  ok: skipTrace(subscriptionId: "${subscriptionId}", input: { records: [{ firstName: "Ada", lastName: "L", address: "1 Main St" }] }) { matches { recordIndex } }
  bad: searchLeads(subscriptionId: $s, input: { query: "x", limit: 3 }) { total }
}`;

const LEDGER = `query ($s: ID!) { creditLedger(subscriptionId: $s, first: 50) { edges { node { kind amount } } } }`;
const THRESHOLDS = `query ($s: ID!) { subscription(id: $s) { balances { type lowBalanceThreshold } } }`;

describe.each(BACKENDS)("a variable sent as null where a value is required, on %s", (backend) => {
  let database: TestDatabase;
  let server: TestServer;
  let subscriptionId: string;
  let token: string;

  beforeAll(async () => {
    database = await createTestDatabase(backend);
    server = await startTestServer({ database });
    subscriptionId = await fundedSubscription(database, OWNER, { leads: 100, skiptrace: 100 });
    token = await userToken(OWNER);
  }, 120_000);
  afterAll(async () => {
    await server?.close();
    await database?.dispose();
  });

  it("refuses the whole operation with 400 before any field runs, as creditPreview does", async () => {
    const ledgerBefore = await server.gql(LEDGER, { s: subscriptionId }, { token });
    const answer = await server.gql(threeFields(subscriptionId), { s: null }, { token });

    expect(answer.status).toBe(400);
    expect(answer.body.errors).toEqual([
      expect.objectContaining({
        message: expect.stringMatching(/^Variable "\$s" of type "ID" was sent as null, but it is used where a value is required \("ID!"\)/),
        extensions: expect.objectContaining({ code: "BAD_USER_INPUT" }),
      }),
    ]);
    expect(answer.body.extensions?.credits ?? { charges: [] }).toMatchObject({ charges: [] });
    // Nothing ran: no hold (nor its refund) on the ledger, the threshold untouched.
    expect((await server.gql(LEDGER, { s: subscriptionId }, { token })).body).toEqual(ledgerBefore.body);
    const thresholds = await server.gql(THRESHOLDS, { s: subscriptionId }, { token });
    expect(thresholds.body.data.subscription.balances.find((b: { type: string }) => b.type === "leads").lowBalanceThreshold).toBeNull();

    const preview = await server.gql(
      `query ($i: CreditPreviewInput!) { creditPreview(input: $i) { sufficient } }`,
      { i: { subscriptionId, query: threeFields(subscriptionId), variables: { s: null } } },
      { token },
    );
    expect(preview.status).toBe(400);
    expect(preview.body.errors?.[0].extensions.code).toBe("BAD_USER_INPUT");
    expect((await auditLedger(database.db)).ok).toBe(true);
  });

  it("refuses a preview with the request's 400 when the null is in @include(if:) or on a field it does not price", async () => {
    // The preview walks @skip/@include itself: a null `if` threw a masked 500 (an outside audit of
    // query shapes), and a null on an unpriced field priced a document the request refuses.
    const documents = [
      `mutation ($f: Boolean = true) { searchLeads(subscriptionId: "${subscriptionId}", input: { query: "q" }) @include(if: $f) { total } }`,
      `mutation ($f: Boolean = true) { ...F } fragment F on Mutation { searchLeads(subscriptionId: "${subscriptionId}", input: { query: "q" }) @skip(if: $f) { total } }`,
      `mutation ($f: Boolean = true) { searchLeads(subscriptionId: "${subscriptionId}", input: { query: "q" }) { total leads @include(if: $f) { name } } }`,
    ];
    for (const query of documents) {
      const request = await server.gql(query, { f: null }, { token });
      const preview = await server.gql(
        `query ($i: CreditPreviewInput!) { creditPreview(input: $i) { sufficient } }`,
        { i: { subscriptionId, query, variables: { f: null } } },
        { token },
      );
      expect(request.status).toBe(400);
      expect(preview.status).toBe(400);
      expect(preview.body.errors).toEqual([
        expect.objectContaining({ message: request.body.errors?.[0].message, extensions: expect.objectContaining({ code: "BAD_USER_INPUT" }) }),
      ]);
    }
  });

  it("still runs the operation when the variable is left out (its default) or given", async () => {
    for (const variables of [{}, { s: subscriptionId }]) {
      const answer = await server.gql(threeFields(subscriptionId), variables, { token });
      expect(answer.status).toBe(200);
      expect(answer.body.errors).toBeUndefined();
      expect(answer.body.extensions?.credits.charges.map((c: { path: string[] }) => c.path[0]).sort()).toEqual(["bad", "ok"]);
    }
  });

  it("ignores a null variable used where null is allowed, or only by another operation of the document", async () => {
    // `$b` is required by Other's @include(if:), and nullable where Mine uses it.
    const document = `query Other($b: Boolean = true) { creditTypes @include(if: $b) { name } }
      query Mine($b: Boolean) { subscription(id: "${subscriptionId}") { grants(includeSpent: $b) { id } } }`;
    const mine = await fetch(`${server.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: document, variables: { b: null }, operationName: "Mine" }),
    });
    expect(mine.status).toBe(200);
    expect(((await mine.json()) as { errors?: unknown }).errors).toBeUndefined();
  });

  it("refuses a subscription over the socket the same way", async () => {
    const socket = await openRawSocket(server.url, token);
    try {
      socket.subscribe("1", `subscription ($s: ID = "${subscriptionId}") { creditBalanceChanged(subscriptionId: $s) { balance } }`, { s: null });
      const answer = await socket.waitFor((m) => m.id === "1" && (m.type === "error" || m.type === "next"), 10_000);
      expect(answer.type).toBe("error");
      expect(answer.payload[0]).toMatchObject({
        message: expect.stringContaining('Variable "$s" of type "ID" was sent as null'),
        extensions: { code: "BAD_USER_INPUT" },
      });
    } finally {
      socket.terminate();
    }
  });
});
