/**
 * A WebSocket frame the client got wrong (an outside protocol audit): a message over the payload
 * limit, an unmasked frame, a text message that is not UTF-8. The `ws` library closes the socket with
 * the code RFC 6455 gives (1009, 1002, 1007) and emits the error on the socket, where graphql-ws's own
 * listener printed "Internal error emitted on a WebSocket socket" and a stack to stderr: before any
 * connection_init, without a token, one stack trace per socket (a cheap log flood). Now each is one
 * line at info through the server's logger, with ws's code and no stack (DESIGN.md, "Errors"), and
 * nothing reaches the console.
 */
import { randomBytes } from "node:crypto";
import { connect, type Socket } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import WebSocket from "ws";
import { captureLogLines } from "../helpers/log-lines.js";
import { startTestServer, type TestServer } from "../helpers/test-app.js";

const MAX_PAYLOAD_BYTES = 10_000;

/** Opens a graphql-ws socket with `ws` and waits until it is open (no connection_init is sent). */
async function openSocket(httpUrl: string): Promise<{ ws: WebSocket; closed: Promise<number> }> {
  const ws = new WebSocket(httpUrl.replace(/^http/, "ws") + "/graphql", "graphql-transport-ws");
  ws.on("error", () => undefined);
  const closed = new Promise<number>((resolve) => ws.once("close", (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  return { ws, closed };
}

/**
 * Upgrades a plain TCP connection by hand and resolves once the server answered 101, so a test can
 * write frames that no WebSocket client library would write.
 */
async function upgradedTcpSocket(httpUrl: string): Promise<{ tcp: Socket; received: () => Buffer }> {
  const { hostname, port } = new URL(httpUrl);
  const tcp = connect(Number(port), hostname);
  tcp.on("error", () => undefined);
  let data = Buffer.alloc(0);
  tcp.on("data", (chunk: Buffer) => (data = Buffer.concat([data, chunk])));
  await new Promise<void>((resolve) => tcp.once("connect", () => resolve()));
  tcp.write(
    [
      "GET /graphql HTTP/1.1",
      `Host: ${hostname}:${port}`,
      "Upgrade: websocket",
      "Connection: Upgrade",
      `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}`,
      "Sec-WebSocket-Version: 13",
      "Sec-WebSocket-Protocol: graphql-transport-ws",
      "",
      "",
    ].join("\r\n"),
  );
  await expect.poll(() => data.includes("\r\n\r\n"), { timeout: 5_000 }).toBe(true);
  const end = data.indexOf("\r\n\r\n") + 4;
  expect(data.subarray(0, end).toString()).toMatch(/^HTTP\/1\.1 101 /);
  return { tcp, received: () => data.subarray(end) };
}

/** The close code of the server's close frame at the start of `frames` (a server's frames are not masked). */
function closeCodeOf(frames: Buffer): number | undefined {
  if (frames.length < 4 || (frames[0]! & 0x0f) !== 0x8) return undefined;
  return frames.readUInt16BE(2);
}

describe("a bad WebSocket frame from a client", () => {
  let server: TestServer;
  const captured = captureLogLines();
  const consoleError = vi.spyOn(console, "error");
  const stderrWrite = vi.spyOn(process.stderr, "write");
  const tcpSockets: Socket[] = [];

  beforeAll(async () => {
    server = await startTestServer({ env: { LOG_LEVEL: "info", MAX_BODY_BYTES: String(MAX_PAYLOAD_BYTES) }, logDestination: captured.destination });
  }, 120_000);
  afterEach(() => {
    consoleError.mockClear();
    stderrWrite.mockClear();
  });
  afterAll(async () => {
    for (const tcp of tcpSockets) tcp.destroy();
    await server?.close();
    consoleError.mockRestore();
    stderrWrite.mockRestore();
  });

  /** What the server logged of it since `from`: one line at info with ws's code, no stack; nothing on the console. */
  async function expectLoggedOnce(from: number, code: string): Promise<void> {
    // ws emits the error as it sends its close frame: by now it has been handled.
    expect(consoleError).not.toHaveBeenCalled();
    const stderr = stderrWrite.mock.calls.map(([chunk]) => String(chunk)).join("");
    expect(stderr).not.toMatch(/Internal error|RangeError|at Receiver/);
    const logged = () => captured.lines.slice(from).filter((line) => line.event === "live.socket_protocol_error");
    await expect.poll(() => logged().length, { timeout: 5_000 }).toBe(1);
    expect(logged()[0]).toMatchObject({ level: 30, component: "live", code });
    const written = captured.lines.slice(from);
    expect(written.filter((line) => line.level >= 40)).toEqual([]);
    expect(JSON.stringify(written)).not.toMatch(/"stack"|"err"/);
  }

  it("closes with 1009 for a message over the payload limit, logged once at info without a stack", async () => {
    const from = captured.lines.length;
    const { ws, closed } = await openSocket(server.url);
    ws.send(JSON.stringify({ type: "connection_init", payload: { padding: "x".repeat(MAX_PAYLOAD_BYTES) } }));
    expect(await closed).toBe(1009);
    await expectLoggedOnce(from, "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH");
  });

  it("closes with 1002 for an unmasked frame, logged once at info without a stack", async () => {
    const from = captured.lines.length;
    const { tcp, received } = await upgradedTcpSocket(server.url);
    tcpSockets.push(tcp);
    const text = Buffer.from(JSON.stringify({ type: "connection_init" }));
    // FIN and text, then the length without the mask bit: a client's frames must be masked.
    tcp.write(Buffer.concat([Buffer.from([0x81, text.length]), text]));
    await expect.poll(() => closeCodeOf(received()), { timeout: 5_000 }).toBe(1002);
    await expectLoggedOnce(from, "WS_ERR_EXPECTED_MASK");
  });

  it("closes with 1007 for a text message that is not UTF-8, logged once at info without a stack", async () => {
    const from = captured.lines.length;
    const { ws, closed } = await openSocket(server.url);
    ws.send(Buffer.from([0xc3, 0x28]), { binary: false });
    expect(await closed).toBe(1007);
    await expectLoggedOnce(from, "WS_ERR_INVALID_UTF8");
  });

  it("logs one line per socket for many bad sockets, and nothing on the console", async () => {
    const from = captured.lines.length;
    const sockets = await Promise.all(Array.from({ length: 20 }, () => openSocket(server.url)));
    for (const { ws } of sockets) ws.send(Buffer.from([0xff]), { binary: false });
    expect(await Promise.all(sockets.map(({ closed }) => closed))).toEqual(Array(20).fill(1007));
    const logged = () => captured.lines.slice(from).filter((line) => line.event === "live.socket_protocol_error");
    await expect.poll(() => logged().length, { timeout: 5_000 }).toBe(20);
    expect(consoleError).not.toHaveBeenCalled();
  });
});
