/**
 * Errors over the WebSocket transport (graphql-ws on /graphql) answered as HTTP answers them
 * (DESIGN.md, "Errors", "Authentication", "Live balance"):
 * - a missing, malformed or bad authorization in connection_init closes the socket with 4401, logged
 *   at info without a stack (it used to close 4500 and print a stack for "<JWT>" without "Bearer ");
 *   so does the expiry of the token a connection was opened with (it used to stay open for good);
 * - a syntax or validation error, or a variable graphql cannot coerce, is an `error` message for that
 *   subscription only, BAD_USER_INPUT with the same message and extensions as over HTTP, and the
 *   socket and its other subscriptions live on (a syntax error used to close the socket with 4500;
 *   a bad variable was a masked INTERNAL_SERVER_ERROR);
 * - every error of an operation carries that operation's requestId, as HTTP errors do, and an
 *   unexpected one is masked and logged at error with it;
 * - every `subscribe` counts against REQUEST_LIMIT with the caller's HTTP requests (it did not count);
 * - only subscriptions are served: a query or mutation over the socket would run outside Apollo's
 *   plugins (a metered mutation was held and never settled), so it is refused.
 */
import { buildSchema, GraphQLError, specifiedRules } from "graphql";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import WebSocket from "ws";
import { mintToken } from "../../src/auth/mint.js";
import { formatError } from "../../src/graphql/format-error.js";
import { formatOperationErrors } from "../../src/live/operation-errors.js";
import { checkOperation, type OperationChecks } from "../../src/live/operation-request.js";
import { createLogger } from "../../src/observability/logger.js";
import { createPgliteDatabase, type TestDatabase } from "../helpers/databases.js";
import { adminToken, fundedSubscription, startTestServer, userToken, type TestServer } from "../helpers/test-app.js";
import { captureLogLines } from "../helpers/log-lines.js";

const BALANCE_CHANGED = `subscription ($s: ID!, $t: [String!]) { creditBalanceChanged(subscriptionId: $s, types: $t) { balance } }`;
const GRANT = `mutation ($s: ID!) { grantCredits(input: { subscriptionId: $s, type: "leads", amount: 1, reason: "ws-errors" }) { id } }`;
const SEARCH_LEADS = `mutation ($s: ID!) { searchLeads(subscriptionId: $s, input: { query: "roofers", limit: 2 }) { total } }`;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

interface Message {
  id?: string;
  type: string;
  payload?: any;
}

/** A graphql-ws socket spoken by hand, so the test sees each message's type and any connection_init payload. */
interface RawSocket {
  messages: Message[];
  closed: Promise<{ code: number; reason: string }>;
  isOpen(): boolean;
  /** Resolves once the server acknowledged connection_init (or closed the socket). */
  ready: Promise<void>;
  subscribe(id: string, query: string, variables?: Record<string, unknown>): void;
  waitFor(match: (m: Message) => boolean, timeoutMs?: number): Promise<Message>;
  close(): void;
}

function rawSocket(httpUrl: string, initPayload: unknown): RawSocket {
  const ws = new WebSocket(httpUrl.replace(/^http/, "ws") + "/graphql", "graphql-transport-ws");
  const messages: Message[] = [];
  let listeners: (() => void)[] = [];
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on("close", (code, reason) => {
      resolve({ code, reason: reason.toString() });
      listeners.forEach((l) => l());
    }),
  );
  const ready = new Promise<void>((resolve) => {
    ws.on("open", () => ws.send(JSON.stringify({ type: "connection_init", payload: initPayload })));
    ws.on("message", (data) => {
      const message = JSON.parse(String(data)) as Message;
      messages.push(message);
      if (message.type === "connection_ack") resolve();
      listeners.forEach((l) => l());
    });
    void closed.then(() => resolve());
  });
  return {
    messages,
    closed,
    ready,
    isOpen: () => ws.readyState === WebSocket.OPEN,
    subscribe: (id, query, variables) => ws.send(JSON.stringify({ id, type: "subscribe", payload: { query, variables } })),
    waitFor(match, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = messages.find(match);
          if (!found) return false;
          clearTimeout(timer);
          listeners = listeners.filter((l) => l !== check);
          resolve(found);
          return true;
        };
        const timer = setTimeout(() => {
          listeners = listeners.filter((l) => l !== check);
          reject(new Error(`no matching message within ${timeoutMs} ms; got ${JSON.stringify(messages)}`));
        }, timeoutMs);
        if (!check()) listeners.push(check);
      });
    },
    close: () => ws.close(),
  };
}

/** An error's extensions without its requestId: the one part that differs between two requests. */
function withoutRequestId(error: { message: string; locations?: unknown; extensions?: Record<string, unknown> }) {
  const { requestId: _id, ...extensions } = error.extensions ?? {};
  return { message: error.message, locations: error.locations, extensions };
}

describe("errors over graphql-ws", () => {
  let database: TestDatabase;
  let server: TestServer;
  const captured = captureLogLines();
  const lines = captured.lines;
  const sockets: RawSocket[] = [];
  let subscriptionId: string;
  let ownerToken: string;
  const consoleError = vi.spyOn(console, "error");

  const open = (initPayload: unknown): RawSocket => {
    const socket = rawSocket(server.url, initPayload);
    sockets.push(socket);
    return socket;
  };
  const openAsOwner = async (): Promise<RawSocket> => {
    const socket = open({ authorization: `Bearer ${ownerToken}` });
    await socket.ready;
    expect(socket.isOpen()).toBe(true);
    return socket;
  };
  /** The log lines written since `from`, and a check that none is an error or carries a stack. */
  const quietSince = (from: number) => {
    const written = lines.slice(from);
    expect(written.filter((line) => line.level >= 50)).toEqual([]);
    expect(JSON.stringify(written)).not.toMatch(/"stack"/);
    expect(consoleError).not.toHaveBeenCalled();
    return written;
  };

  beforeAll(async () => {
    database = await createPgliteDatabase();
    const logDestination = captured.destination;
    // JWT_CLOCK_TOLERANCE of 1 s: a socket is closed that long after its token's exp (tested below).
    server = await startTestServer({ database, env: { LOG_LEVEL: "info", RATE_LIMIT_DEFAULT: "100000/1m", JWT_CLOCK_TOLERANCE: "1" }, logDestination });
    ownerToken = await userToken("ws-errors-owner");
    subscriptionId = await fundedSubscription(database, "ws-errors-owner", { leads: 50 });
  }, 120_000);
  afterEach(() => consoleError.mockClear());
  afterAll(async () => {
    for (const socket of sockets) socket.close();
    await server?.close();
    await database?.dispose();
    consoleError.mockRestore();
  });

  describe("connection_init", () => {
    const cases: [string, () => Promise<unknown>][] = [
      ["a valid JWT without 'Bearer '", async () => ({ authorization: ownerToken })],
      ["'Bearer ' alone", async () => ({ authorization: "Bearer " })],
      ["'Bearer' and two tokens", async () => ({ authorization: `Bearer ${ownerToken} ${ownerToken}` })],
      ["a number", async () => ({ authorization: 42 })],
      ["no authorization", async () => ({})],
      ["no payload", async () => undefined],
      ["a token that is not a JWT", async () => ({ authorization: "Bearer not-a-jwt" })],
    ];

    it.each(cases)("closes the socket with 4401 for %s, logged at info without a stack", async (_label, payload) => {
      const before = lines.length;
      const socket = open(await payload());
      expect((await socket.closed).code).toBe(4401);
      expect(socket.messages).toEqual([]);
      const written = quietSince(before);
      expect(written.filter((line) => line.event === "live.unauthorized")).toEqual([expect.objectContaining({ level: 30 })]);
    });

    it("accepts 'Bearer <JWT>'", async () => {
      await openAsOwner();
    });

    it("closes a connection with 4401 when the token it was opened with expires (past the clock tolerance), and not before", async () => {
      // Signed now, expiring in 2 s (a JWT's exp has whole seconds): the socket is accepted, then ends
      // at exp plus JWT_CLOCK_TOLERANCE (1 s here), the leeway the token was accepted with.
      const shortLived = await mintToken({ sub: "ws-errors-owner", expiresIn: "2s" });
      const expiresAt = (JSON.parse(Buffer.from(shortLived.split(".")[1]!, "base64url").toString()) as { exp: number }).exp * 1000;
      const longLived = await openAsOwner();
      const socket = open({ authorization: `Bearer ${shortLived}` });
      await socket.ready;
      expect(socket.isOpen()).toBe(true);
      socket.subscribe("live", BALANCE_CHANGED, { s: subscriptionId, t: ["leads"] });

      const closed = await socket.closed;
      expect(Date.now()).toBeGreaterThanOrEqual(expiresAt + 1_000);
      expect(closed).toEqual({ code: 4401, reason: expect.stringMatching(/token expired/i) });
      // Only that connection: the one opened with a token valid for 30 days stays open.
      expect(longLived.isOpen()).toBe(true);
    }, 15_000);
  });

  describe("a request that is wrong before it runs", () => {
    it("answers a syntax error as an error message for that subscription only, as HTTP answers it", async () => {
      const query = "subscription { creditBalanceChanged(";
      const overHttp = await server.gql(query, {}, { token: ownerToken });
      expect(overHttp.status).toBe(400);

      const socket = await openAsOwner();
      socket.subscribe("live", BALANCE_CHANGED, { s: subscriptionId, t: ["leads"] });
      // The live subscription sends nothing until a balance changes: give it a moment to open.
      await new Promise((resolve) => setTimeout(resolve, 200));
      const before = lines.length;
      socket.subscribe("broken", query, {});
      const error = await socket.waitFor((m) => m.id === "broken");

      expect(error.type).toBe("error");
      expect(error.payload.map(withoutRequestId)).toEqual(overHttp.body.errors!.map(withoutRequestId));
      expect(error.payload[0].extensions).toMatchObject({ code: "BAD_USER_INPUT", reason: "GRAPHQL_PARSE_FAILED" });
      expect(error.payload[0].extensions.requestId).toMatch(UUID);

      // The socket and its other subscription live on.
      const granted = await server.gql(GRANT, { s: subscriptionId }, { token: await adminToken() });
      expect(granted.body.errors).toBeUndefined();
      await socket.waitFor((m) => m.id === "live" && m.type === "next" && m.payload.data?.creditBalanceChanged.balance === 51);
      expect(socket.isOpen()).toBe(true);

      const written = quietSince(before);
      expect(written.filter((line) => line.msg === "client error")).toEqual([
        expect.objectContaining({ level: 30, reason: "GRAPHQL_PARSE_FAILED", requestId: error.payload[0].extensions.requestId }),
      ]);
    });

    it("answers a validation error as an error message with the code and message HTTP gives", async () => {
      const query = `subscription { creditBalanceChanged(subscriptionId: "${subscriptionId}") { nope } }`;
      const overHttp = await server.gql(query, {}, { token: ownerToken });
      expect(overHttp.status).toBe(400);

      const socket = await openAsOwner();
      const before = lines.length;
      socket.subscribe("invalid", query, {});
      const error = await socket.waitFor((m) => m.id === "invalid");

      expect(error.type).toBe("error");
      expect(error.payload.map(withoutRequestId)).toEqual(overHttp.body.errors!.map(withoutRequestId));
      expect(error.payload[0].extensions).toMatchObject({ code: "BAD_USER_INPUT", reason: "GRAPHQL_VALIDATION_FAILED" });
      expect(error.payload[0].extensions.requestId).toMatch(UUID);
      expect(socket.isOpen()).toBe(true);
      quietSince(before);
    });

    it("holds a subscription document to MAX_DOCUMENT_TOKENS, with the message HTTP gives", async () => {
      const aliases = Array.from({ length: 3_400 }, (_, i) => `a${i}: __typename`).join(" ");
      const query = `subscription ($s: ID!) { creditBalanceChanged(subscriptionId: $s) { ${aliases} } }`;
      const overHttp = await server.gql(query, { s: subscriptionId }, { token: ownerToken });
      expect(overHttp.status).toBe(400);
      expect(overHttp.body.errors![0].message).toMatch(/MAX_DOCUMENT_TOKENS/);

      const socket = await openAsOwner();
      socket.subscribe("huge", query, { s: subscriptionId });
      const error = await socket.waitFor((m) => m.id === "huge");
      expect(error.type).toBe("error");
      expect(error.payload.map(withoutRequestId)).toEqual(overHttp.body.errors!.map(withoutRequestId));
      expect(socket.isOpen()).toBe(true);
    });

    const variableCases: [string, Record<string, unknown>, string][] = [
      ["missing", {}, 'Variable "$s" of required type "ID!" was not provided.'],
      ["of the wrong type", { t: 5 }, 'Variable "$t" got invalid value 5; String cannot represent a non string value: 5'],
      ["an object for an ID", { s: { x: 1 } }, 'Variable "$s" got invalid value { x: 1 }; ID cannot represent value: { x: 1 }'],
    ];

    it.each(variableCases)("answers a variable %s as BAD_USER_INPUT with graphql's message", async (_label, variables, message) => {
      const socket = await openAsOwner();
      const before = lines.length;
      // `t: 5` comes with a valid `s`, so the only problem is `t`.
      socket.subscribe("vars", BALANCE_CHANGED, "t" in variables ? { s: subscriptionId, ...variables } : variables);
      const error = await socket.waitFor((m) => m.id === "vars");

      expect(error.type).toBe("error");
      expect(error.payload).toHaveLength(1);
      expect(error.payload[0].message).toBe(message);
      expect(error.payload[0].extensions).toEqual({ code: "BAD_USER_INPUT", requestId: expect.stringMatching(UUID) });
      expect(socket.isOpen()).toBe(true);
      quietSince(before);
    });

    it("gives a variable error the same message and extensions as HTTP does", async () => {
      // Over HTTP a subscription is refused whatever its variables: compare a query with the same variable.
      const overHttp = await server.gql(`query ($s: ID!) { subscription(id: $s) { id } }`, { s: { x: 1 } }, { token: ownerToken });
      expect(overHttp.status).toBe(400);
      const socket = await openAsOwner();
      socket.subscribe("vars", BALANCE_CHANGED, { s: { x: 1 } });
      const error = await socket.waitFor((m) => m.id === "vars");
      expect(error.payload.map((e: any) => withoutRequestId(e).extensions)).toEqual(overHttp.body.errors!.map((e) => withoutRequestId(e).extensions));
      expect(error.payload[0].message).toBe(overHttp.body.errors![0].message);
    });

    it("refuses a query or a mutation over the socket, and charges nothing", async () => {
      const socket = await openAsOwner();
      socket.subscribe("mutation", SEARCH_LEADS, { s: subscriptionId });
      socket.subscribe("query", `query { creditTypes { name } }`, {});
      for (const id of ["mutation", "query"]) {
        const error = await socket.waitFor((m) => m.id === id);
        expect(error.type).toBe("error");
        expect(error.payload[0].extensions).toMatchObject({ code: "BAD_USER_INPUT", requestId: expect.stringMatching(UUID) });
        expect(error.payload[0].message).toMatch(/HTTP/);
      }
      const balance = await server.gql(`query ($s: ID!) { subscription(id: $s) { balances { type balance } } }`, { s: subscriptionId }, { token: ownerToken });
      expect(balance.body.data.subscription.balances).toContainEqual({ type: "leads", balance: 51 });
    });

    // graphql 16's subscribe assumed the root field was there: skipped, it closed the whole socket
    // with 4500 "undefined is not iterable" and printed a stack; with a variable in the condition
    // it was a masked INTERNAL_SERVER_ERROR. The spec's Single Root Field rule refuses both.
    const rootConditions: [string, string, Record<string, unknown>][] = [
      ["@skip(if: true)", `subscription { creditBalanceChanged(subscriptionId: "SUB") @skip(if: true) { balance } }`, {}],
      ["@include(if: false)", `subscription { creditBalanceChanged(subscriptionId: "SUB") @include(if: false) { balance } }`, {}],
      ["@include(if: $f) with f true", `subscription ($f: Boolean!) { creditBalanceChanged(subscriptionId: "SUB") @include(if: $f) { balance } }`, { f: true }],
      ["@skip on an inline fragment at the root", `subscription { ... @skip(if: true) { creditBalanceChanged(subscriptionId: "SUB") { balance } } }`, {}],
      ["@skip(if: $v) in a named fragment at the root", `subscription Live($v: Boolean!) { ...Root } fragment Root on Subscription { creditBalanceChanged(subscriptionId: "SUB") @skip(if: $v) { balance } }`, { v: false }],
    ];

    it.each(rootConditions)("refuses %s on a subscription's root field for that operation alone; the socket and its other subscription live on", async (_label, template, variables) => {
      const socket = await openAsOwner();
      socket.subscribe("live", BALANCE_CHANGED, { s: subscriptionId, t: ["leads"] });
      await new Promise((resolve) => setTimeout(resolve, 200));
      const before = lines.length;
      socket.subscribe("conditional", template.replace("SUB", subscriptionId), variables);
      const error = await socket.waitFor((m) => m.id === "conditional");

      expect(error.type).toBe("error");
      expect(error.payload).toHaveLength(1);
      expect(error.payload[0].message).toMatch(/must not use "@(skip|include)" on its root field/);
      expect(error.payload[0].extensions).toMatchObject({ code: "BAD_USER_INPUT", reason: "GRAPHQL_VALIDATION_FAILED" });
      expect(socket.isOpen()).toBe(true);
      quietSince(before);

      const { balance } = (await server.gql(`query ($s: ID!) { subscription(id: $s) { balances { type balance } } }`, { s: subscriptionId }, { token: ownerToken })).body.data.subscription.balances.find((b: { type: string }) => b.type === "leads");
      const granted = await server.gql(GRANT, { s: subscriptionId }, { token: await adminToken() });
      expect(granted.body.errors).toBeUndefined();
      await socket.waitFor((m) => m.id === "live" && m.type === "next" && m.payload.data?.creditBalanceChanged.balance === balance + 1);
      expect(socket.isOpen()).toBe(true);
    });
  });

  describe("request ids", () => {
    it("puts a requestId of its own on each operation's FORBIDDEN, NOT_FOUND and BAD_USER_INPUT errors", async () => {
      const stranger = open({ authorization: `Bearer ${await userToken("ws-errors-stranger")}` });
      await stranger.ready;
      stranger.subscribe("forbidden", BALANCE_CHANGED, { s: subscriptionId });
      stranger.subscribe("missing", BALANCE_CHANGED, { s: "00000000-0000-4000-8000-000000000000" });
      const owner = await openAsOwner();
      owner.subscribe("bad-type", BALANCE_CHANGED, { s: subscriptionId, t: ["gold"] });

      const answers = [
        await stranger.waitFor((m) => m.id === "forbidden" && m.type !== "complete"),
        await stranger.waitFor((m) => m.id === "missing" && m.type !== "complete"),
        await owner.waitFor((m) => m.id === "bad-type" && m.type !== "complete"),
      ];
      const errors = answers.map((m) => (m.type === "next" ? m.payload.errors : m.payload)[0]);
      expect(errors.map((e) => e.extensions.code)).toEqual(["FORBIDDEN", "NOT_FOUND", "BAD_USER_INPUT"]);
      for (const error of errors) expect(error.extensions.requestId).toMatch(UUID);
      expect(new Set(errors.map((e) => e.extensions.requestId)).size).toBe(3);
    });

    it("masks an unexpected error with the requestId, and logs it at error with that id", () => {
      const written: Record<string, any>[] = [];
      const logger = createLogger("info", { write: (line: string) => void written.push(JSON.parse(line)) });
      const unexpected = new GraphQLError("connection to server at 10.0.0.5 was lost", {
        path: ["creditBalanceChanged"],
        originalError: new Error("connection to server at 10.0.0.5 was lost"),
      });
      const forbidden = new GraphQLError("Not yours", { extensions: { code: "FORBIDDEN" } });

      const formatted = formatOperationErrors([unexpected, forbidden], { requestId: "req-1", logger, formatError });

      expect(formatted).toEqual([
        { message: expect.stringMatching(/^Internal server error/), path: ["creditBalanceChanged"], extensions: { code: "INTERNAL_SERVER_ERROR", requestId: "req-1" } },
        { message: "Not yours", extensions: { code: "FORBIDDEN", requestId: "req-1" } },
      ]);
      expect(written).toEqual([expect.objectContaining({ level: 50, requestId: "req-1", err: expect.objectContaining({ message: "connection to server at 10.0.0.5 was lost" }) })]);
    });
  });
});

describe("REQUEST_LIMIT over graphql-ws", () => {
  let database: TestDatabase;
  let server: TestServer;
  const sockets: RawSocket[] = [];

  beforeAll(async () => {
    database = await createPgliteDatabase();
    server = await startTestServer({ database, env: { REQUEST_LIMIT: "3/1m" } });
  }, 120_000);
  afterAll(async () => {
    for (const socket of sockets) socket.close();
    await server?.close();
    await database?.dispose();
  });

  it("counts every subscribe against its caller with HTTP's requests, refusing the one past the limit as RATE_LIMITED for that operation alone", async () => {
    const owner = "ws-limited-owner";
    const token = await userToken(owner);
    const subscriptionId = await fundedSubscription(database, owner, { leads: 10 });
    // One HTTP request, the connection_init and one subscribe make the caller's three.
    for (let i = 0; i < 1; i++) expect((await server.gql("{ viewer { id } }", {}, { token })).status).toBe(200);
    const socket = rawSocket(server.url, { authorization: `Bearer ${token}` });
    sockets.push(socket);
    await socket.ready;
    socket.subscribe("first", BALANCE_CHANGED, { s: subscriptionId, t: ["leads"] });
    socket.subscribe("second", BALANCE_CHANGED, { s: subscriptionId, t: ["leads"] });

    const refused = await socket.waitFor((m) => m.id === "second");
    expect(refused.type).toBe("error");
    expect(refused.payload).toEqual([
      {
        message: expect.stringMatching(/^Too many requests: at most 3 requests per 1m per caller; try again in \d+ s$/),
        extensions: { code: "RATE_LIMITED", retryAfterSeconds: expect.any(Number), requestId: expect.stringMatching(UUID) },
      },
    ]);
    // The socket and the subscription within the limit live on: an admin's grant reaches it.
    const granted = await server.gql(GRANT, { s: subscriptionId }, { token: await adminToken() });
    expect(granted.body.errors).toBeUndefined();
    await socket.waitFor((m) => m.id === "first" && m.type === "next" && m.payload.data?.creditBalanceChanged.balance === 11);
    expect(socket.isOpen()).toBe(true);
    // And the caller's next HTTP request is over the limit too: one count for both transports.
    expect((await server.gql("{ viewer { id } }", {}, { token })).status).toBe(429);
  });
});

describe("checkOperation (a subscribe message checked as Apollo checks an HTTP request)", () => {
  const schema = buildSchema(`
    type Query { ping: String }
    type Event { balance: Int }
    type Subscription { changed(id: ID!): Event }
  `);
  const checks = (overrides: Partial<OperationChecks> = {}): OperationChecks => ({ schema, rules: specifiedRules, hideSuggestions: false, ...overrides });
  const answer = (query: string, variables: Record<string, unknown> = {}, overrides: Partial<OperationChecks> = {}) => {
    const result = checkOperation({ query, variables }, checks(overrides));
    if (!Array.isArray(result)) throw new Error("expected a refusal");
    return result.map((error) => formatError(error.toJSON(), error));
  };

  it("cuts schema hints from validation messages in production, as hideSchemaDetailsFromClientErrors does", () => {
    const query = "subscription { changed(id: 1) { balanse } }";
    expect(answer(query)[0].message).toMatch(/Did you mean "balance"\?$/);
    expect(answer(query, {}, { hideSuggestions: true })[0]).toMatchObject({
      message: 'Cannot query field "balanse" on type "Event".',
      extensions: { code: "BAD_USER_INPUT", reason: "GRAPHQL_VALIDATION_FAILED" },
    });
  });

  it("holds a document to the lexical-token limit, with the message HTTP gives", () => {
    const [error] = answer("subscription { changed(id: 1) { balance } }", {}, { parseOptions: { maxTokens: 5 } });
    expect(error).toMatchObject({ extensions: { code: "BAD_USER_INPUT", reason: "GRAPHQL_PARSE_FAILED" } });
    expect(error.message).toMatch(/more than 5 lexical tokens \(MAX_DOCUMENT_TOKENS\)/);
  });

  it("refuses NUL in the variables as the HTTP plugin does, naming where", () => {
    const [error] = answer("subscription ($id: ID!) { changed(id: $id) { balance } }", { id: "a\u0000b" });
    expect(error).toMatchObject({ message: expect.stringMatching(/^variables\.id: text may not contain NUL/), extensions: { code: "BAD_USER_INPUT", field: "variables.id" } });
  });

  it("refuses an operation it cannot pick with graphql's message", () => {
    expect(answer("subscription A { changed(id: 1) { balance } } subscription B { changed(id: 2) { balance } }")[0]).toMatchObject({
      message: "Must provide operation name if query contains multiple operations.",
      extensions: { code: "BAD_USER_INPUT", reason: "OPERATION_RESOLUTION_FAILURE" },
    });
    const named = checkOperation({ query: "subscription A { changed(id: 1) { balance } }", operationName: "B" }, checks());
    expect(Array.isArray(named) && named[0].message).toBe('Unknown operation named "B".');
  });

  it("passes a good subscription through with the client's own variables", () => {
    const result = checkOperation({ query: "subscription ($id: ID!) { changed(id: $id) { balance } }", variables: { id: 7 } }, checks());
    expect(Array.isArray(result)).toBe(false);
    expect(result).toMatchObject({ operationName: undefined, variableValues: { id: 7 }, operation: { operation: "subscription" } });
  });
});
