/**
 * The document budget end to end (src/graphql/validation/document-budget.ts): a document whose
 * validation would cost far more than its size is refused before graphql validates it, with 400
 * BAD_USER_INPUT and a message that names the limit, over HTTP without a token, from creditPreview,
 * and over the WebSocket. Before the budget, 300 repeats of one field were validated for 100–400 ms
 * and answered 200, and 1,600 operations in one document were validated whole before one ran; 400 fragments took
 * 100–150 ms.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPgliteDatabase, type TestDatabase } from "../helpers/databases.js";
import { fundedSubscription, startTestServer, userToken, type TestServer } from "../helpers/test-app.js";
import { documentText } from "../helpers/typed-gql.js";
import { CreditPreviewDocument } from "../generated/graphql.js";
import { openRawSocket, type RawGraphQLSocket } from "../live/raw-graphql-ws.js";

const repeat = (text: string, n: number) => Array.from({ length: n }, () => text).join(" ");
const operations = (n: number) => Array.from({ length: n }, (_, i) => `query q${i} { __typename }`).join(" ");

const REPEATED_300 = `{ ${repeat("creditTypes { name }", 300)} }`;
const REPEATED_MESSAGE =
  'The operation selects "creditTypes" 300 times in one selection set (fragments included); at most 20 are accepted: select a field once (or use aliases).';
const OPERATIONS_MESSAGE =
  "The document has 1600 operations; at most 50 are accepted in one document: send only the operation you run (a request runs one).";
const FIELDS_MESSAGE =
  "The document selects 2001 fields; at most 2000 are accepted in one document (a fragment's fields count once): split it into several requests.";
const REFUSED = { code: "BAD_USER_INPUT", reason: "GRAPHQL_VALIDATION_FAILED" };

describe("the document budget", () => {
  let database: TestDatabase;
  let server: TestServer;
  let owner: string;
  let subscriptionId: string;
  const sockets: RawGraphQLSocket[] = [];

  beforeAll(async () => {
    database = await createPgliteDatabase();
    server = await startTestServer({ database });
    owner = await userToken("budget-owner");
    subscriptionId = await fundedSubscription(database, "budget-owner", { leads: 10 });
  }, 120_000);
  afterAll(async () => {
    for (const socket of sockets) socket.terminate();
    await server?.close();
    await database?.dispose();
  });

  describe("over HTTP, without a token", () => {
    it("refuses one field repeated 300 times in a selection set: 400 BAD_USER_INPUT, saying what to do", async () => {
      const res = await server.gql(REPEATED_300);
      expect(res.status).toBe(400);
      expect(res.body.data).toBeUndefined();
      expect(res.body.errors).toHaveLength(1);
      expect(res.body.errors![0]).toMatchObject({ message: REPEATED_MESSAGE, locations: [{ line: 1, column: 1 }], extensions: REFUSED });
      // Refused again when sent again: a refused document is not kept as validated.
      const again = await server.gql(REPEATED_300);
      expect(again.status).toBe(400);
      expect(again.body.errors![0].message).toBe(REPEATED_MESSAGE);
    });

    it("counts what fragments and inline fragments bring into the selection set", async () => {
      const query = `{ ...Types ... { ${repeat("creditTypes { name }", 10)} } } fragment Types on Query { ${repeat("creditTypes { name }", 11)} }`;
      const res = await server.gql(query);
      expect(res.status).toBe(400);
      expect(res.body.errors![0]).toMatchObject({ message: expect.stringMatching(/^The operation selects "creditTypes" 21 times/), extensions: REFUSED });
    });

    it("refuses 1,600 operations in one document, even with an operationName", async () => {
      const res = await postRaw(server, { query: operations(1600), operationName: "q7" });
      expect(res.status).toBe(400);
      expect(res.body.errors).toEqual([expect.objectContaining({ message: OPERATIONS_MESSAGE, extensions: expect.objectContaining(REFUSED) })]);
    });

    it("refuses more than 100 fragment definitions in one document", async () => {
      const fragments = Array.from({ length: 400 }, (_, i) => `fragment F${i} on Query { a${i}: __typename }`).join(" ");
      const spreads = Array.from({ length: 400 }, (_, i) => `...F${i}`).join(" ");
      const res = await server.gql(`{ ${spreads} } ${fragments}`);
      expect(res.status).toBe(400);
      expect(res.body.errors).toEqual([
        expect.objectContaining({
          message: "The document defines 400 fragments; at most 100 are accepted in one document: send only the fragments the operation spreads.",
          extensions: expect.objectContaining(REFUSED),
        }),
      ]);
    });

    it("refuses more than 2,000 field selections in one document", async () => {
      const fields = Array.from({ length: 2001 }, (_, i) => `f${i}: __typename`).join(" ");
      const res = await server.gql(`{ ${fields} }`);
      expect(res.status).toBe(400);
      expect(res.body.errors).toEqual([expect.objectContaining({ message: FIELDS_MESSAGE, extensions: expect.objectContaining(REFUSED) })]);
    });

    it("answers documents at the limits as before", async () => {
      const twenty = await server.gql(`{ ${repeat("creditTypes { name }", 20)} }`);
      expect(twenty.status).toBe(200);
      expect(twenty.body.errors).toBeUndefined();
      expect(twenty.body.data.creditTypes.length).toBeGreaterThan(0);
      const fifty = await postRaw(server, { query: operations(50), operationName: "q49" });
      expect(fifty.status).toBe(200);
      expect(fifty.body).toEqual({ data: { __typename: "Query" } });
    });
  });

  describe("from creditPreview", () => {
    const preview = (query: string, operationName?: string) =>
      server.gql(documentText(CreditPreviewDocument), { input: { subscriptionId, query, operationName } }, { token: owner });

    it("refuses the documents a request would refuse, with the same words", async () => {
      const repeated = await preview(REPEATED_300);
      expect(repeated.status).toBe(400);
      expect(repeated.body.errors![0]).toMatchObject({ message: `The document is not valid: ${REPEATED_MESSAGE}`, extensions: { code: "BAD_USER_INPUT" } });
      const many = await preview(operations(1600), "q7");
      expect(many.status).toBe(400);
      expect(many.body.errors![0]).toMatchObject({ message: `The document is not valid: ${OPERATIONS_MESSAGE}`, extensions: { code: "BAD_USER_INPUT" } });
    });

    it("prices a document at the limits as before", async () => {
      const res = await preview(`{ ${repeat("creditTypes { name }", 20)} }`);
      expect(res.status).toBe(200);
      expect(res.body.data.creditPreview).toMatchObject({ items: [], sufficient: true });
    });
  });

  describe("over the WebSocket", () => {
    const open = async () => {
      const socket = await openRawSocket(server.url, owner);
      sockets.push(socket);
      return socket;
    };

    it("refuses a subscription over the budget for that operation alone, as HTTP refuses it", async () => {
      const socket = await open();
      const repeated = `subscription ($s: ID!) { creditBalanceChanged(subscriptionId: $s) { ${repeat("balance", 300)} } }`;
      socket.subscribe("repeated", repeated, { s: subscriptionId });
      const error = await socket.waitFor((m) => m.id === "repeated");
      expect(error.type).toBe("error");
      expect(error.payload).toEqual([
        expect.objectContaining({
          message:
            'The operation selects "balance" 300 times in one selection set (fragments included); at most 20 are accepted: select a field once (or use aliases).',
          extensions: expect.objectContaining(REFUSED),
        }),
      ]);

      const many = Array.from({ length: 60 }, (_, i) => `subscription s${i} { creditBalanceChanged(subscriptionId: "${subscriptionId}") { balance } }`).join(" ");
      socket.send({ id: "many", type: "subscribe", payload: { query: many, operationName: "s0" } });
      const refused = await socket.waitFor((m) => m.id === "many");
      expect(refused.type).toBe("error");
      expect(refused.payload).toEqual([
        expect.objectContaining({
          message: "The document has 60 operations; at most 50 are accepted in one document: send only the operation you run (a request runs one).",
          extensions: expect.objectContaining(REFUSED),
        }),
      ]);

      // The socket lives on, and a subscription within the budget is served.
      socket.subscribe("live", `subscription ($s: ID!) { creditBalanceChanged(subscriptionId: $s) { ${repeat("balance", 20)} } }`, { s: subscriptionId });
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(socket.messages.filter((m) => m.id === "live" && m.type === "error")).toEqual([]);
      socket.send({ id: "live", type: "complete" });
    });
  });
});

/** POSTs a body of our own (operationName included), as postGraphQL does for query and variables. */
async function postRaw(server: TestServer, body: Record<string, unknown>): Promise<{ status: number; body: any }> {
  const res = await fetch(`${server.url}/graphql`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}
