/**
 * A graphql-ws socket spoken by hand over `ws`, for the live-balance socket tests: every message the
 * server sends is kept in arrival order, so a test can tell what came before and after what (a `next`
 * after the `pong` answering a ping sent right after a `complete`), and the socket's reading can be
 * paused at the TCP level, as a client that stops reading does.
 */
import WebSocket from "ws";

export interface Message {
  id?: string;
  type: string;
  payload?: any;
}

export interface RawGraphQLSocket {
  ws: WebSocket;
  /** Every message received, in order. */
  messages: Message[];
  closed: Promise<{ code: number; reason: string }>;
  send(message: Message): void;
  subscribe(id: string, query: string, variables?: Record<string, unknown>): void;
  /** Resolves with the first message (received already or later) that matches. */
  waitFor(match: (m: Message) => boolean, timeoutMs?: number): Promise<Message>;
  /** Stops reading from the TCP socket (the kernel's buffers fill, then the server's writes stall), or reads again. */
  pauseReading(): void;
  resumeReading(): void;
  /** The client's own TCP port (the server sees the connection coming from it). */
  localPort(): number;
  terminate(): void;
}

/** Opens a socket to `httpUrl`'s /graphql and waits until connection_init (with this token) is acknowledged. */
export async function openRawSocket(httpUrl: string, token: string): Promise<RawGraphQLSocket> {
  const ws = new WebSocket(httpUrl.replace(/^http/, "ws") + "/graphql", "graphql-transport-ws");
  const messages: Message[] = [];
  let listeners: (() => void)[] = [];
  const notify = () => listeners.forEach((l) => l());
  // The client's error (ECONNRESET when the server resets the connection) is expected in some tests.
  ws.on("error", () => undefined);
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on("close", (code, reason) => {
      resolve({ code, reason: reason.toString() });
      notify();
    }),
  );
  ws.on("message", (data) => {
    messages.push(JSON.parse(String(data)) as Message);
    notify();
  });
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  const rawTcp = () => (ws as unknown as { _socket: { pause(): void; resume(): void; localPort: number } })._socket;
  const socket: RawGraphQLSocket = {
    ws,
    messages,
    closed,
    send: (message) => ws.send(JSON.stringify(message)),
    subscribe: (id, query, variables) => socket.send({ id, type: "subscribe", payload: { query, variables } }),
    waitFor(match, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = messages.find(match);
          if (!found) return;
          clearTimeout(timer);
          listeners = listeners.filter((l) => l !== check);
          resolve(found);
        };
        const timer = setTimeout(() => {
          listeners = listeners.filter((l) => l !== check);
          reject(new Error(`no matching message within ${timeoutMs} ms; got ${JSON.stringify(messages.slice(-5))}`));
        }, timeoutMs);
        listeners.push(check);
        check();
      });
    },
    pauseReading: () => rawTcp().pause(),
    resumeReading: () => rawTcp().resume(),
    localPort: () => rawTcp().localPort,
    terminate: () => ws.terminate(),
  };
  socket.send({ type: "connection_init", payload: { authorization: `Bearer ${token}` } });
  await socket.waitFor((m) => m.type === "connection_ack");
  return socket;
}
