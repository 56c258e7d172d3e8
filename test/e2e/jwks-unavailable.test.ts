/**
 * When the key set at JWT_JWKS_URL cannot be read, a well-signed token cannot be checked: that is the
 * server's failure, not the client's. Over HTTP a call that needs a caller answers a masked 500 with
 * its requestId (logged at error with the cause), never 401 "Invalid token", which would send a user
 * with a good token back to sign in; over WebSocket connection_init closes with 4500, not 4401. A
 * token signed by a key the (readable) set does not publish stays a 401.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { SignJWT, exportJWK, generateKeyPair } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { MASKED_MESSAGE } from "../../src/graphql/format-error.js";
import { createPgliteDatabase, type TestDatabase } from "../helpers/databases.js";
import { startTestServer, type TestServer } from "../helpers/test-app.js";
import { captureLogLines } from "../helpers/log-lines.js";

const VIEWER = `{ viewer { id } }`;

describe("a key set that cannot be read", () => {
  let database: TestDatabase;
  let keySet: Server;
  let available = true;
  let server: TestServer;
  let token: string;
  let stranger: string;
  const captured = captureLogLines();
  const lines = captured.lines;

  beforeAll(async () => {
    const { publicKey, privateKey } = await generateKeyPair("RS256");
    const other = await generateKeyPair("RS256");
    const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid: "k1", alg: "RS256", use: "sig" }] };
    keySet = createServer((_req, res) => {
      if (!available) {
        res.writeHead(503);
        res.end("down");
        return;
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(jwks));
    });
    await new Promise<void>((resolve) => keySet.listen(0, "127.0.0.1", resolve));
    const sign = (key: CryptoKey) =>
      new SignJWT({}).setProtectedHeader({ alg: "RS256", kid: "k1" }).setSubject("jwks-user").setExpirationTime("1h").sign(key);
    token = await sign(privateKey);
    stranger = await sign(other.privateKey);
    database = await createPgliteDatabase();
    const logDestination = captured.destination;
    server = await startTestServer({
      database,
      env: { JWT_JWKS_URL: `http://127.0.0.1:${(keySet.address() as AddressInfo).port}/jwks.json`, LOG_LEVEL: "info" },
      logDestination,
    });
  }, 120_000);
  afterAll(async () => {
    await server?.close();
    await database?.dispose();
    await new Promise<void>((resolve) => keySet.close(() => resolve()));
  });

  it("answers a call that needs a caller with a masked 500 while the set is down, and 200 once it is back", async () => {
    available = false;
    const down = await server.gql(VIEWER, {}, { token });
    expect(down.status).toBe(500);
    expect(down.body.errors![0].message).toBe(MASKED_MESSAGE);
    expect(down.body.errors![0].extensions).toMatchObject({ code: "INTERNAL_SERVER_ERROR" });
    const requestId = down.body.errors![0].extensions!.requestId;
    expect(lines.filter((l) => l.level === 50 && l.requestId === requestId)).toHaveLength(1);

    const opened = new WebSocket(server.url.replace(/^http/, "ws") + "/graphql", "graphql-transport-ws");
    opened.on("open", () => opened.send(JSON.stringify({ type: "connection_init", payload: { authorization: `Bearer ${token}` } })));
    const closed = await new Promise<number>((resolve) => opened.on("close", (code) => resolve(code)));
    expect(closed).toBe(4500);

    available = true;
    const back = await server.gql(VIEWER, {}, { token });
    expect(back.status).toBe(200);
    expect(back.body.data).toEqual({ viewer: { id: "jwks-user" } });
  });

  it("still answers 401 for a token signed by a key the set does not publish", async () => {
    available = true;
    const res = await server.gql(VIEWER, {}, { token: stranger });
    expect(res.status).toBe(401);
    expect(res.body.errors![0].extensions).toMatchObject({ code: "UNAUTHENTICATED" });
  });
});
