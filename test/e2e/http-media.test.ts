/**
 * What a GraphQL request's headers must say before anything runs (src/http/request-media.ts), and
 * how a refusal of an unread body leaves the connection (src/http/http-server.ts). An outside
 * protocol audit: Apollo negotiates `Accept` only after executing, so a metered mutation sent with
 * `Accept: text/html` was held, run and settled, then answered 406 with no data, its cost kept; a
 * gzip body was "not valid UTF-8"; a chunked body cut short after its 413 left the keep-alive
 * connection hanging; `Expect: 100-continue` invited a body already declared too large.
 */
import { request as httpRequest } from "node:http";
import { connect } from "node:net";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPgliteDatabase, type TestDatabase } from "../helpers/databases.js";
import { ledgerEntries } from "../helpers/ledger-state.js";
import { fundedSubscription, startTestServer, userToken, type TestServer } from "../helpers/test-app.js";

const OWNER = "media-owner";
const search = (subscriptionId: string) =>
  JSON.stringify({ query: `mutation { searchLeads(subscriptionId: "${subscriptionId}", input: { query: "roofers", limit: 7 }) { total } }` });

describe("request media: refused before anything runs", () => {
  let database: TestDatabase;
  let server: TestServer;
  let token: string;
  let subscriptionId: string;

  beforeAll(async () => {
    database = await createPgliteDatabase();
    server = await startTestServer({ database, env: { MAX_BODY_BYTES: "4096" } });
    token = await userToken(OWNER);
    subscriptionId = await fundedSubscription(database, OWNER, { leads: 100 });
  }, 120_000);
  afterAll(async () => {
    await server?.close();
    await database?.dispose();
  });

  const post = (headers: Record<string, string>, body: string | Buffer = search(subscriptionId)) =>
    fetch(`${server.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}`, ...headers },
      body: typeof body === "string" ? body : new Blob([new Uint8Array(body)]),
    });

  it.each(["text/html", "application/xml", "multipart/mixed", "application/json;charset=utf-16"])(
    "a metered mutation with Accept: %s is answered 406 and charged nothing",
    async (accept) => {
      const before = (await ledgerEntries(database, subscriptionId)).length;
      const res = await post({ accept });
      expect(res.status).toBe(406);
      expect(res.headers.get("connection")).toBe("close");
      const body = (await res.json()) as { data?: unknown; errors: { message: string; extensions: Record<string, unknown> }[] };
      expect(body.data).toBeUndefined();
      expect(body.errors[0].message).toMatch(/^Not acceptable: the Accept header admits neither application\/graphql-response\+json nor application\/json/);
      expect(body.errors[0].extensions).toMatchObject({ code: "BAD_USER_INPUT", requestId: expect.any(String) });
      expect((await ledgerEntries(database, subscriptionId)).length).toBe(before);
    },
  );

  it.each(["application/graphql-response+json", "application/json", "*/*", "multipart/mixed;deferSpec=20220824, application/json", "text/html, application/*;q=0.5"])(
    "Accept: %s runs the mutation and charges it",
    async (accept) => {
      const before = (await ledgerEntries(database, subscriptionId)).length;
      const res = await post({ accept });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { data: { searchLeads: { total: number } }; extensions: { credits: { charges: unknown[] } } };
      expect(body.data.searchLeads.total).toBeGreaterThanOrEqual(0);
      expect(body.extensions.credits.charges).toHaveLength(1);
      expect((await ledgerEntries(database, subscriptionId)).length).toBeGreaterThan(before);
    },
  );

  it("a compressed body is 415, saying to send it uncompressed; nothing is charged", async () => {
    const before = (await ledgerEntries(database, subscriptionId)).length;
    for (const encoding of ["gzip", "deflate", "br"]) {
      const res = await post({ "content-encoding": encoding }, encoding === "gzip" ? gzipSync(search(subscriptionId)) : search(subscriptionId));
      expect(res.status).toBe(415);
      const body = (await res.json()) as { errors: { message: string; extensions: Record<string, unknown> }[] };
      expect(body.errors[0]).toMatchObject({
        message: `Content-Encoding ${encoding} is not supported: send the body uncompressed.`,
        extensions: { code: "BAD_USER_INPUT" },
      });
    }
    expect((await post({ "content-encoding": "identity" })).status).toBe(200);
    // Only the uncompressed one was charged: the refused ones wrote nothing before it.
    const after = await ledgerEntries(database, subscriptionId);
    expect(after.slice(before).filter((e) => e.kind === "DEBIT")).toHaveLength(1);
  });

  it("a body declared in a charset other than UTF-8 is 415; UTF-8 in any spelling is read", async () => {
    const refused = await post({ "content-type": "application/json; charset=utf-16" });
    expect(refused.status).toBe(415);
    expect(((await refused.json()) as { errors: { message: string }[] }).errors[0].message).toBe(
      "Charset utf-16 is not supported: send the body as UTF-8 JSON.",
    );
    expect((await post({ "content-type": "application/json; charset=iso-8859-1" })).status).toBe(415);
    for (const contentType of ["application/json; charset=UTF-8", 'application/json;charset="utf-8"', "application/json; charset=utf8"]) {
      expect((await post({ "content-type": contentType })).status).toBe(200);
    }
  });

  it("a chunked body past the limit is 413 and the connection is closed, not left hanging", async () => {
    const { hostname: host, port } = new URL(server.url);
    const socket = connect(Number(port), host);
    let received = "";
    socket.on("data", (chunk) => (received += chunk.toString("latin1")));
    const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
    await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
    const chunk = "x".repeat(5000);
    socket.write(
      `POST /graphql HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n` +
        `${chunk.length.toString(16)}\r\n${chunk}\r\n`,
    );
    // The client gives up on its body and sends its next request on the same connection.
    await new Promise((resolve) => setTimeout(resolve, 200));
    socket.write(`GET /health HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
    await closed;
    expect(received).toMatch(/^HTTP\/1\.1 413 /);
    expect(received).toMatch(/\r\nconnection: close\r\n/i);
    // The next request was not read as part of the body: the server closed the connection instead.
    expect(received.match(/HTTP\/1\.1 /g)).toHaveLength(1);
  });

  it("Expect: 100-continue with a body declared too large gets 413 without being invited to send it", async () => {
    const { hostname, port } = new URL(server.url);
    const outcome = await new Promise<{ status: number; invited: boolean }>((resolve, reject) => {
      let invited = false;
      const req = httpRequest({
        host: hostname,
        port: Number(port),
        method: "POST",
        path: "/graphql",
        headers: { "content-type": "application/json", "content-length": "100000", expect: "100-continue" },
      });
      req.on("continue", () => {
        invited = true;
        req.end("x".repeat(100_000));
      });
      req.on("response", (res) => {
        res.resume();
        resolve({ status: res.statusCode ?? 0, invited });
        req.destroy();
      });
      req.on("error", (err) => (invited ? resolve({ status: -1, invited }) : reject(err)));
    });
    expect(outcome).toEqual({ status: 413, invited: false });
    // A body within the limit is still invited and served.
    const small = await new Promise<{ status: number; invited: boolean }>((resolve, reject) => {
      let invited = false;
      const body = JSON.stringify({ query: "{ creditTypes { name } }" });
      const req = httpRequest({
        host: hostname,
        port: Number(port),
        method: "POST",
        path: "/graphql",
        headers: { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)), expect: "100-continue" },
      });
      req.on("continue", () => {
        invited = true;
        req.end(body);
      });
      req.on("response", (res) => {
        res.resume();
        res.on("end", () => resolve({ status: res.statusCode ?? 0, invited }));
      });
      req.on("error", reject);
    });
    expect(small).toEqual({ status: 200, invited: true });
  });
});
