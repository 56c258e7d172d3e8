/**
 * The HTTP layer: node:http with Apollo Server's integration API (executeHTTPGraphQLRequest) at
 * /graphql, plus plain routes (/health, /metrics …). It owns request ids, body limits, and
 * graceful shutdown: keep serving (every response saying `Connection: close`) until no request has
 * been in flight for a quiet moment, or the grace has passed; then stop listening, refuse what
 * still arrives (503), let the requests already running finish for a bounded time, and close.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { HeaderMap, type ApolloServer } from "@apollo/server";
import type { Logger } from "pino";
import type { CorsPolicy } from "./cors.js";
import { afterPendingIo, connectionClosed } from "./client-connection.js";
import { BodyNotUtf8Error, BodyTooLargeError, declaredTooLarge, readBody } from "./read-body.js";
import { errorResponseMediaType, refuseUnacceptable, refuseUnreadableBody } from "./request-media.js";
import type { RequestGate, RequestRefusal } from "./request-limit-gate.js";
import { requestIdFrom } from "./request-id.js";

export interface RouteRequest {
  req: IncomingMessage;
  res: ServerResponse;
  requestId: string;
}

export type RouteHandler = (request: RouteRequest) => Promise<void> | void;

export interface HttpServerOptions<Ctx extends object> {
  apollo: ApolloServer<Ctx>;
  /** Builds the GraphQL context of one request. */
  context: (req: IncomingMessage, requestId: string) => Promise<Ctx>;
  /**
   * Other routes by method and path, e.g. "GET /health". A GET route answers HEAD too (headers, no
   * body); any other method on such a path gets 405 with `Allow`.
   */
  routes: Record<string, RouteHandler>;
  /** Routes for a whole subtree, any method: "/console" answers /console and every /console/… path. */
  prefixRoutes?: Record<string, RouteHandler>;
  maxBodyBytes: number;
  logger: Logger;
  /** CORS headers and preflight answers (CORS_ORIGINS); none when absent. */
  cors?: CorsPolicy;
  /** Runs before a GraphQL request's body is read (REQUEST_LIMIT); a refusal is answered as is. */
  admit?: RequestGate;
  /**
   * A GraphQL response never reached the client (its connection closed before the response was
   * written out): `paysForDelivery` says whether this request's response must be watched for that
   * (most carry nothing to refund and cost nothing to watch), `undelivered` is then called.
   */
  delivery?: { paysForDelivery: (context: Ctx) => boolean; undelivered: (context: Ctx) => Promise<void> };
}

/** The periods of a graceful stop (RunningHttpServer.close), each with its default when left out. */
export interface StopTimings {
  graceMs?: number;
  quietMs?: number;
  finishMs?: number;
}

export interface RunningHttpServer {
  readonly server: Server;
  listen(port: number, host: string): Promise<string>;
  /**
   * Graceful stop, in two periods.
   *
   * The grace: until no request has been in flight for `quietMs` (250 ms), or `graceMs` (10 s) has
   * passed, the server keeps listening and serving: a request that reaches it meanwhile, on a new
   * connection or an idle keep-alive one, is answered, with `Connection: close`. Stopping at once
   * instead reset the connections still in the accept backlog and the keep-alive ones whose next
   * request was in transit. (Under steady traffic the quiet moment never comes: the grace is what
   * a balancer has to see /health say "stopping" and route elsewhere.)
   *
   * The finish: then it stops listening and closes its idle connections; a request that still
   * arrives on a connection it holds is answered 503 with `Retry-After` and not run; and the
   * requests already running get up to `finishMs` (8 s) more. Only then are the connections left
   * cut. An outside audit: cutting at the grace's end reset calls that were a second from done.
   *
   * Resolves once no request is running (or at the finish's bound), so that what closes after it
   * (Apollo, the credits core) never closes under a running request.
   */
  close(graceMs?: number, quietMs?: number, finishMs?: number): Promise<void>;
}

export const GRAPHQL_PATH = "/graphql";

/** How long no request must have been in flight before a closing server stops listening (close()). */
const DRAIN_QUIET_MS = 250;
/** How long a closing server keeps serving before it stops listening, at the most (close()). */
const DRAIN_GRACE_MS = 10_000;
/**
 * How long the requests still running when the grace ends have to finish before their connections
 * are cut (close()). With the grace, 18 s: well within main.ts's STOP_DEADLINE_MS (25 s), which must
 * also cover Apollo's stop and the credits core's close (settlements, the lease, the last refunds).
 */
const FINISH_MS = 8_000;
/** What a client refused by a stopping server is told to wait before sending again (another instance answers it). */
const STOPPING_RETRY_AFTER_SECONDS = 1;
const STOPPING_MESSAGE =
  "The server is stopping: this request was not run and nothing was charged. Send it again (another instance will answer).";

/**
 * Resolves once the response has been handed to the operating system whole (true), or its connection
 * closed before that (false). What happens to the bytes after is TCP's: a client that closes in the
 * instant the response is on its way is not seen here. (A response ended after its connection closed
 * also reads as finished: the caller checks the connection before writing.)
 *
 * The connection is watched as well as the response: a pipelined request's response waits in
 * node:http's queue, without a socket, until the responses before it are written, and when the
 * client hangs up first it hears neither 'finish' nor 'close' (an outside audit: such calls stayed
 * charged, and counted as in flight until a graceful stop's grace ran out).
 */
function writtenOut(res: ServerResponse, connection: Socket): Promise<boolean> {
  if (res.writableFinished) return Promise.resolve(true);
  if (res.destroyed || connection.destroyed) return Promise.resolve(false);
  return new Promise((resolve) => {
    const settle = (written: boolean) => {
      res.off("finish", onFinish);
      res.off("close", onEnd);
      connection.off("close", onEnd);
      resolve(written);
    };
    const onFinish = () => settle(true);
    const onEnd = () => settle(res.writableFinished);
    res.once("finish", onFinish);
    res.once("close", onEnd);
    connection.once("close", onEnd);
  });
}

/** Reading the request failed because its client closed the connection mid-request (node:http's "aborted"). */
function hungUpMidRequest(req: IncomingMessage, err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return req.destroyed && (code === "ECONNRESET" || (err instanceof Error && err.message === "aborted"));
}

function sendJson(res: ServerResponse, status: number, body: unknown, requestId: string): void {
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "x-request-id": requestId });
  res.end(JSON.stringify(body));
}

/**
 * A GraphQL-shaped error answer written here rather than by Apollo, in the media type the request's
 * Accept header asks for (as Apollo's own answers are): before, these came as application/json
 * whatever was asked, and a client accepting only application/graphql-response+json read them as
 * a transport failure instead of GraphQL errors.
 */
function sendGraphQLErrors(res: ServerResponse, status: number, errors: unknown[], requestId: string): void {
  res.writeHead(status, { "content-type": errorResponseMediaType(res.req?.headers.accept), "x-request-id": requestId });
  res.end(JSON.stringify({ errors }));
}

/** 405 for a plain route's path (/health, /metrics) asked with a method it does not answer, with Allow. */
function sendMethodNotAllowed(res: ServerResponse, method: string, path: string, allowed: string[], requestId: string): void {
  const body = `${method} is not allowed on ${path}: use ${allowed.join(" or ")}.\n`;
  res.writeHead(405, {
    allow: allowed.join(", "),
    "content-type": "text/plain; charset=utf-8",
    "content-length": Buffer.byteLength(body),
    "x-request-id": requestId,
  });
  res.end(body);
}

/** A response for a request that never reached GraphQL (bad body, too large): same error shape as GraphQL's. */
export function sendRequestError(res: ServerResponse, status: number, message: string, requestId: string): void {
  sendGraphQLErrors(res, status, [{ message, extensions: { code: "BAD_USER_INPUT", requestId } }], requestId);
}

/**
 * A refusal of a request whose body is left unread (or half read): the connection closes after the
 * response. Kept alive, the rest of the body would be read as the next request (a chunked body cut
 * short left the connection hanging until it was reset), and draining a body that is too large is
 * the work the refusal is there to avoid.
 */
function refuseUnread(req: IncomingMessage, res: ServerResponse, status: number, message: string, requestId: string): void {
  res.setHeader("connection", "close");
  sendRequestError(res, status, message, requestId);
  req.resume();
}

/**
 * A request that reached a server past its grace (on a connection it still held): not run, nothing
 * charged; 503 with Retry-After, in GraphQL's error shape. INTERNAL_SERVER_ERROR is the closed set's
 * only code for a failure on our side (DESIGN.md, "Errors"); the message says what to do.
 */
function refuseWhileStopping(req: IncomingMessage, res: ServerResponse, requestId: string): void {
  res.setHeader("connection", "close");
  res.setHeader("retry-after", String(STOPPING_RETRY_AFTER_SECONDS));
  sendGraphQLErrors(res, 503, [{ message: STOPPING_MESSAGE, extensions: { code: "INTERNAL_SERVER_ERROR", requestId } }], requestId);
  req.resume();
}

/** A request asking to become a WebSocket (graphql-ws: `Upgrade: websocket`). */
function asksForWebSocket(req: IncomingMessage): boolean {
  const upgrade = req.headers.upgrade;
  return typeof upgrade === "string" && upgrade.split(",").some((protocol) => protocol.trim().toLowerCase() === "websocket");
}

/**
 * A WebSocket upgrade that no WebSocket server takes: node:http hands it to the request handler
 * only when nothing listens for upgrades (the live socket is stopping, or none is attached). As a
 * GET it would reach Apollo, whose answer is a CSRF refusal (400) that tells a reconnecting
 * graphql-ws client nothing; it is told to connect again instead.
 */
function refuseWebSocket(req: IncomingMessage, res: ServerResponse, stopping: boolean, requestId: string): void {
  const body = stopping
    ? "This server is stopping and takes no new WebSocket connections: connect again (another instance will answer).\n"
    : "WebSocket connections are not accepted here right now: connect again later.\n";
  res.writeHead(503, {
    connection: "close",
    "retry-after": String(STOPPING_RETRY_AFTER_SECONDS),
    "content-type": "text/plain; charset=utf-8",
    "content-length": Buffer.byteLength(body),
    "x-request-id": requestId,
  });
  res.end(body);
  req.resume();
}

/** A refusal before the body is read (e.g. 429 REQUEST_LIMIT), in GraphQL's error shape, with Retry-After. */
function sendRefusal(res: ServerResponse, refusal: RequestRefusal, requestId: string): void {
  res.setHeader("retry-after", String(refusal.retryAfterSeconds));
  sendGraphQLErrors(
    res,
    refusal.status,
    [{ message: refusal.message, extensions: { code: "RATE_LIMITED", retryAfterSeconds: refusal.retryAfterSeconds, requestId } }],
    requestId,
  );
}

/**
 * Apollo answers some bad requests (a batch, a body that is not an operation) before any plugin
 * runs; their errors still get the request id every other error carries.
 */
function withRequestId(body: string, requestId: string): string {
  try {
    const parsed = JSON.parse(body) as { errors?: { extensions?: Record<string, unknown> }[] };
    if (!Array.isArray(parsed.errors) || parsed.errors.every((e) => e.extensions?.requestId)) return body;
    for (const error of parsed.errors) error.extensions = { ...(error.extensions ?? {}), requestId };
    return JSON.stringify(parsed);
  } catch {
    return body;
  }
}

export function createHttpServer<Ctx extends object>(options: HttpServerOptions<Ctx>): RunningHttpServer {
  const { apollo, logger } = options;
  /** Requests whose handler runs or whose response is still being written out. */
  let inFlight = 0;
  /** Requests received so far: a quiet moment is one in which this does not change. */
  let received = 0;
  let closing = false;
  /** Set once the grace is over: what still arrives is refused (503), not run. */
  let refusing = false;
  const idleWaiters: (() => void)[] = [];
  /** Responses whose headers may not be sent yet: they say `Connection: close` once closing starts. */
  const responding = new Set<ServerResponse>();

  /** Resolves once no request has been in flight, and none has arrived, for `quietMs`; or at `deadline` (performance.now()). */
  async function drained(deadline: number, quietMs: number): Promise<void> {
    for (;;) {
      const left = deadline - performance.now();
      if (left <= 0) return;
      let timer: NodeJS.Timeout | undefined;
      const timeout = (ms: number) => new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)).unref());
      if (inFlight > 0) {
        await Promise.race([new Promise<void>((resolve) => idleWaiters.push(resolve)), timeout(left)]);
        clearTimeout(timer);
        continue;
      }
      const seen = received;
      await timeout(Math.min(quietMs, left));
      if (inFlight === 0 && received === seen) return;
    }
  }

  /** Resolves once no request is in flight, or at `deadline` (performance.now()). */
  async function handlersDone(deadline: number): Promise<void> {
    while (inFlight > 0) {
      const left = deadline - performance.now();
      if (left <= 0) return;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => idleWaiters.push(resolve)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, left)).unref()),
      ]);
      clearTimeout(timer);
    }
  }

  /** Counted in flight until its handler is done and its response written out (or its connection closed). */
  function finished(res: ServerResponse, connection: Socket): Promise<void> {
    return writtenOut(res, connection).then(() => undefined);
  }

  async function handleGraphQL(req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> {
    const refusal = options.admit ? await options.admit(req) : undefined;
    if (refusal) {
      sendRefusal(res, refusal, requestId);
      // The body is discarded unread: a refused flood costs no buffering and no parse.
      req.resume();
      return;
    }
    const unacceptable = refuseUnacceptable(req.headers.accept);
    if (unacceptable) {
      refuseUnread(req, res, unacceptable.status, unacceptable.message, requestId);
      return;
    }
    let body: unknown;
    if (req.method === "POST") {
      const unreadable = refuseUnreadableBody(req.headers["content-encoding"], req.headers["content-type"]);
      if (unreadable) {
        refuseUnread(req, res, unreadable.status, unreadable.message, requestId);
        return;
      }
      let text: string;
      try {
        text = await readBody(req, options.maxBodyBytes);
      } catch (err) {
        if (err instanceof BodyTooLargeError) {
          refuseUnread(req, res, 413, `Request body too large: the limit is ${err.limit} bytes`, requestId);
          return;
        }
        if (err instanceof BodyNotUtf8Error) {
          sendRequestError(res, 400, err.message, requestId);
          return;
        }
        throw err;
      }
      // Media types are case-insensitive: "Application/JSON" is JSON too.
      const contentType = (req.headers["content-type"] ?? "").toLowerCase();
      if (text.length > 0 && contentType.includes("json")) {
        try {
          body = JSON.parse(text);
        } catch {
          sendRequestError(res, 400, "Malformed JSON body: send a JSON object with a query", requestId);
          return;
        }
      } else {
        body = text;
      }
    }
    const headers = new HeaderMap();
    for (const [key, value] of Object.entries(req.headers)) {
      if (value !== undefined) headers.set(key, Array.isArray(value) ? value.join(", ") : value);
    }
    const url = new URL(req.url ?? "/", "http://localhost");
    let context: Ctx | undefined;
    const response = await apollo.executeHTTPGraphQLRequest({
      httpGraphQLRequest: { method: (req.method ?? "GET").toUpperCase(), headers, search: url.search, body },
      context: async () => (context = await options.context(req, requestId)),
    });
    for (const [key, value] of response.headers) res.setHeader(key, value);
    res.setHeader("x-request-id", requestId);
    res.statusCode = response.status ?? 200;
    const paysForDelivery = context !== undefined && options.delivery !== undefined && options.delivery.paysForDelivery(context);
    // A client that hung up while its calls settled must be seen before the response is written.
    if (paysForDelivery) await afterPendingIo();
    // Read before writing: a response ended on a closed connection counts as finished.
    const clientGoneBeforeWrite = res.destroyed || connectionClosed(req.socket);
    if (response.body.kind === "complete") {
      res.end(res.statusCode >= 400 ? withRequestId(response.body.string, requestId) : response.body.string);
    } else {
      for await (const chunk of response.body.asyncIterator) res.write(chunk);
      res.end();
    }
    if (!paysForDelivery) return;
    if (clientGoneBeforeWrite || !(await writtenOut(res, req.socket))) await options.delivery!.undelivered(context!);
  }

  /** A plain route ("GET /health"); HEAD is answered by the GET route (node:http sends its headers, not its body). */
  const plainRoute = (method: string, path: string): RouteHandler | undefined =>
    options.routes[`${method} ${path}`] ?? (method === "HEAD" ? options.routes[`GET ${path}`] : undefined);
  /** The methods a plain route's path answers (HEAD wherever GET is), for 405's Allow; empty for other paths. */
  const allowedMethods = (path: string): string[] => {
    const methods = Object.keys(options.routes)
      .map((key) => key.split(" "))
      .filter(([, routePath]) => routePath === path)
      .map(([method]) => method);
    if (methods.includes("GET") && !methods.includes("HEAD")) methods.splice(methods.indexOf("GET") + 1, 0, "HEAD");
    return methods;
  };

  const prefixes = Object.entries(options.prefixRoutes ?? {});
  const prefixRoute = (path: string) => prefixes.find(([prefix]) => path === prefix || path.startsWith(`${prefix}/`))?.[1];

  const server = createServer(async (req, res) => {
    const requestId = requestIdFrom(req.headers["x-request-id"]);
    inFlight++;
    received++;
    responding.add(res);
    try {
      // While draining, the server still answers, but no connection is kept for another request.
      if (closing) {
        res.setHeader("connection", "close");
      }
      if (asksForWebSocket(req)) {
        refuseWebSocket(req, res, closing, requestId);
        return;
      }
      if (options.cors) {
        if (options.cors.isPreflight(req)) {
          options.cors.answerPreflight(req, res);
          return;
        }
        options.cors.apply(req, res);
      }
      if (refusing) {
        refuseWhileStopping(req, res, requestId);
        return;
      }
      const path = (req.url ?? "/").split("?")[0];
      const route = plainRoute(req.method ?? "GET", path);
      if (route) {
        await route({ req, res, requestId });
      } else if (path === GRAPHQL_PATH) {
        // Before the 405 check, which no GraphQL request needs: no plain route is on this path.
        await handleGraphQL(req, res, requestId);
      } else if (allowedMethods(path).length > 0) {
        sendMethodNotAllowed(res, req.method ?? "", path, allowedMethods(path), requestId);
      } else {
        const subtree = prefixRoute(path);
        if (subtree) await subtree({ req, res, requestId });
        else sendJson(res, 404, { error: `No route for ${req.method} ${path}. GraphQL is at ${GRAPHQL_PATH}.` }, requestId);
      }
    } catch (err) {
      if (hungUpMidRequest(req, err)) {
        // The client's doing, not a failure here (DESIGN.md, "Errors": client errors at info, no stack).
        logger.info({ event: "http.client_hung_up", requestId }, "the client closed the connection before its request was read");
        return;
      }
      logger.error({ err, requestId }, "request failed outside GraphQL");
      if (!res.headersSent) {
        sendGraphQLErrors(res, 500, [{ message: "Internal server error", extensions: { code: "INTERNAL_SERVER_ERROR", requestId } }], requestId);
      } else {
        res.end();
      }
    } finally {
      responding.delete(res);
      await finished(res, req.socket);
      inFlight--;
      if (inFlight === 0) idleWaiters.splice(0).forEach((resolve) => resolve());
    }
  });
  // A client that asks before sending its body (`Expect: 100-continue`) is not invited to send one
  // that is declared too large: the request goes on without "100 Continue" and is refused 413.
  server.on("checkContinue", (req, res) => {
    if (!declaredTooLarge(req, options.maxBodyBytes)) res.writeContinue();
    server.emit("request", req, res);
  });
  // Slow-loris protection without cutting off long metered calls.
  server.headersTimeout = 20_000;
  server.requestTimeout = 120_000;

  return {
    server,
    listen(port, host) {
      return new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => {
          server.off("error", reject);
          const address = server.address() as AddressInfo;
          const shownHost = host === "0.0.0.0" || host === "::" ? "localhost" : host;
          resolve(`http://${shownHost}:${address.port}`);
        });
      });
    },
    async close(graceMs = DRAIN_GRACE_MS, quietMs = DRAIN_QUIET_MS, finishMs = FINISH_MS) {
      closing = true;
      const deadline = performance.now() + graceMs;
      // Responses of requests already running close their connection too, unless already under way.
      for (const res of responding) if (!res.headersSent) res.setHeader("connection", "close");
      // Still listening, idle keep-alive connections kept: what arrives now is served. (A server
      // that never listened, a start that failed, has nothing to drain.)
      if (server.listening) await drained(deadline, quietMs);
      // The finish: no new connection, no new request run; those running may end their work.
      refusing = true;
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await handlersDone(performance.now() + finishMs);
      // Those of requests that outlasted the finish too (the credits core refunds their holds).
      server.closeAllConnections();
      await stopped;
    },
  };
}
