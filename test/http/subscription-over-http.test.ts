/**
 * A subscription operation sent over HTTP (POST, with or without a token, with or without a
 * multipart Accept header) is the client's mistake: subscriptions run over WebSocket with graphql-ws
 * on the same /graphql path. It is refused with 400 BAD_USER_INPUT, a message saying so and the
 * request id, before any resolver runs, and logged at info without a stack (DESIGN.md, "Errors").
 * It used to run creditBalanceChanged's resolver with no event and answer a masked 500.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPgliteDatabase, type TestDatabase } from "../helpers/databases.js";
import { fundedSubscription, startTestServer, userToken, type TestServer } from "../helpers/test-app.js";
import { captureLogLines } from "../helpers/log-lines.js";

const SUBSCRIBE = `subscription Live($s: ID!) { creditBalanceChanged(subscriptionId: $s) { balance } }`;

describe("a subscription operation over HTTP", () => {
  let database: TestDatabase;
  let server: TestServer;
  const captured = captureLogLines();
  const lines = captured.lines;
  let subscriptionId: string;
  let token: string;

  beforeAll(async () => {
    database = await createPgliteDatabase();
    const logDestination = captured.destination;
    server = await startTestServer({ database, env: { LOG_LEVEL: "info" }, logDestination });
    token = await userToken("http-subscriber");
    subscriptionId = await fundedSubscription(database, "http-subscriber", { ai: 10 });
  }, 120_000);
  afterAll(async () => {
    await server?.close();
    await database?.dispose();
  });

  const cases: [string, { token?: boolean; headers?: Record<string, string> }][] = [
    ["with the owner's token", { token: true }],
    ["without a token", {}],
    ["asking for a multipart answer", { token: true, headers: { accept: "multipart/mixed;subscriptionSpec=1.0, application/json" } }],
  ];

  it.each(cases)("is refused with 400 BAD_USER_INPUT %s, before any resolver runs", async (_label, options) => {
    const before = lines.length;
    const requestId = `sub-over-http-${before}`;
    const res = await server.gql(SUBSCRIBE, { s: subscriptionId }, {
      token: options.token ? token : undefined,
      headers: { "x-request-id": requestId, ...options.headers },
    });

    expect(res.status).toBe(400);
    expect(res.body.data).toBeUndefined();
    expect(res.body.errors).toHaveLength(1);
    expect(res.body.errors![0].message).toBe(
      "Subscriptions are not served over HTTP: open a WebSocket to /graphql with the graphql-ws protocol " +
        "(graphql-transport-ws) and subscribe there.",
    );
    expect(res.body.errors![0].extensions).toMatchObject({ code: "BAD_USER_INPUT", requestId });

    const written = lines.slice(before);
    expect(written.filter((line) => line.level >= 50)).toEqual([]);
    expect(written.filter((line) => line.msg === "client error")).toEqual([
      expect.objectContaining({ level: 30, reason: "BAD_USER_INPUT", message: expect.stringMatching(/^Subscriptions are not served over HTTP/), operationName: "Live", requestId }),
    ]);
    expect(JSON.stringify(written)).not.toMatch(/"stack"|TypeError/);
  });

  it("accepting only a multipart answer, gets Apollo's 406 (no JSON answer is acceptable), as a query would: never a 500", async () => {
    const accept = { accept: "multipart/mixed;subscriptionSpec=1.0" };
    const subscription = await server.gql(SUBSCRIBE, { s: subscriptionId }, { token, headers: accept });
    const query = await server.gql(`{ creditTypes { name } }`, undefined, { token, headers: accept });
    for (const res of [subscription, query]) {
      expect(res.status).toBe(406);
      expect(res.body.errors![0].extensions).toMatchObject({ code: "BAD_USER_INPUT", requestId: expect.any(String) });
    }
  });

  it("leaves queries and mutations over HTTP as they were", async () => {
    const res = await server.gql(`query($s: ID!) { subscription(id: $s) { balances { type balance } } }`, { s: subscriptionId }, { token });
    expect(res.status).toBe(200);
    expect(res.body.data.subscription.balances).toContainEqual({ type: "ai", balance: 10 });
  });
});
