/**
 * The 'error' events of the live-balance sockets, handled by this server instead of graphql-ws.
 *
 * On a server-side socket, `ws` emits 'error' for a frame the client got wrong (over maxPayload, not
 * masked, text that is not UTF-8, an unknown opcode: ws/lib/receiver.js gives each a `WS_ERR_…`
 * code), after it has already closed the socket with the code RFC 6455 gives for it (1009, 1002,
 * 1007…). graphql-ws's useServer attaches its own listener to every socket, which console.errors
 * "Internal error emitted on a WebSocket socket" with the stack and closes with 4500: a client's
 * mistake printed as our failure, before any connection_init and without a token, one stack trace
 * per socket. DESIGN.md ("Errors"): client errors are logged at info without a stack.
 */
import type { Logger } from "pino";
import type { WebSocket } from "ws";

/** An error `ws` raised for a frame the client sent; ws has closed the socket with the code it carries. */
export function isClientFrameError(err: unknown): err is Error & { code: string } {
  const code = err instanceof Error ? (err as { code?: unknown }).code : undefined;
  return typeof code === "string" && code.startsWith("WS_ERR_");
}

/**
 * Hands `socket` to graphql-ws (`handOver` emits the WebSocketServer's 'connection') and then puts
 * `onError` in place of the 'error' listeners graphql-ws attached to it meanwhile.
 *
 * Why this way: EventEmitter calls every listener, so one of ours added before or after graphql-ws's
 * cannot keep its console.error from running; it has to be removed. graphql-ws attaches it
 * synchronously in its 'connection' listener, and this server emits 'connection' itself (the
 * upgrade handover), so right after that emit is the one place where exactly graphql-ws's listeners
 * are new on the socket, found and removed through EventEmitter's public API, no wrapping of emit
 * and nothing of graphql-ws's internals. ws emits nothing on the socket before then: it reads the
 * socket's first bytes on a later tick.
 */
export function handOverWithOwnErrorListener(socket: WebSocket, handOver: () => void, onError: (err: Error) => void): void {
  const before = new Set(socket.listeners("error"));
  handOver();
  for (const listener of socket.listeners("error")) {
    if (!before.has(listener)) socket.removeListener("error", listener as (...args: unknown[]) => void);
  }
  socket.on("error", onError);
}

/**
 * What a socket's error is told to the log: a client's bad frame is one line at info with ws's code
 * and message, no stack; anything else (ws's sender failing) is our failure, logged at error and the
 * socket closed with `internalErrorCode`, as graphql-ws's listener closed it.
 */
export function socketErrorListener(socket: WebSocket, log: Logger, internalErrorCode: number): (err: Error) => void {
  return (err) => {
    if (isClientFrameError(err)) {
      log.info({ event: "live.socket_protocol_error", code: err.code, reason: err.message }, "live-balance socket closed: the client sent an invalid WebSocket frame");
      return;
    }
    log.error({ event: "live.socket_error", err }, "live-balance socket failed");
    socket.close(internalErrorCode, "Internal server error");
  };
}
