/**
 * A client that hangs up in the middle of sending its request (an outside overload audit: under load,
 * thousands of such requests were each logged at error, "request failed outside GraphQL", with a
 * stack). It is the client's doing, not a failure of the server: DESIGN.md ("Errors") logs client
 * errors at info without a stack, and keeps error for what is unexpected.
 */
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { captureLogLines } from "../helpers/log-lines.js";
import { startTestServer, type TestServer } from "../helpers/test-app.js";

describe("a client that hangs up mid-request", () => {
  const captured = captureLogLines();
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({ env: { LOG_LEVEL: "info" }, logDestination: captured.destination });
  }, 60_000);
  afterAll(async () => {
    await server?.close();
  });

  it("is logged at info, without a stack, and the server goes on answering", async () => {
    const target = new URL(server.url);
    for (let i = 0; i < 3; i++) {
      const socket = connect(Number(target.port), target.hostname);
      socket.on("error", () => undefined);
      await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
      // Promises 1,000 bytes of body, sends 10, then goes away.
      socket.write(`POST /graphql HTTP/1.1\r\nHost: ${target.host}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"query":`);
      await new Promise((r) => setTimeout(r, 100));
      socket.destroy();
    }
    await expect.poll(() => captured.lines.filter((l) => l.event === "http.client_hung_up").length, { timeout: 5_000 }).toBe(3);
    const hungUp = captured.lines.filter((l) => l.event === "http.client_hung_up");
    for (const line of hungUp) {
      expect(line.level).toBe(30);
      expect(line.err).toBeUndefined();
      expect(line.requestId).toEqual(expect.any(String));
    }
    expect(captured.lines.filter((l) => l.level >= 50)).toEqual([]);
    expect((await server.gql("{ creditTypes { name } }")).status).toBe(200);
  });
});
