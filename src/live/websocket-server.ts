/**
 * graphql-ws on the HTTP server's own port and path (/graphql), as Apollo Server documents it:
 * a `ws` WebSocketServer on the http.Server, graphql-ws's useServer, and a drain plugin that closes
 * the sockets when Apollo stops. Authentication is the connection_init payload
 * `{ "authorization": "Bearer <JWT>" }`; a missing, malformed or bad one closes the socket with 4401,
 * and so does the token's expiry on a connection opened with it, or the token no longer passing
 * verification (its key removed from JWT_JWKS_URL's set: checked again every minute while the socket
 * is open). The close reason says what HTTP would say of the same token ("Token expired: sign in again").
 * Each operation gets its own requestId and the same context an HTTP request gets, is checked as
 * Apollo checks an HTTP request (a bad one is an `error` message for that operation alone; the socket
 * stays open), and its errors are formatted and logged as HTTP's are, each carrying the requestId.
 * Only subscriptions are served: queries and mutations belong to HTTP, where Apollo's plugins run.
 * After a client's `complete`, nothing more is sent for that id (src/live/operation-stream.ts).
 *
 * A client that does not read is dropped rather than buffered for (dropSlowConnection): when its
 * socket's unsent bytes pass `maxBufferedBytes`, when an event has waited SEND_STALL_MS to be written
 * to its socket, or when one of its subscriptions falls the hub's queue bound behind. The stalled send
 * is what catches a client that stopped reading: graphql-ws writes one message per subscription and
 * waits for it to reach the kernel before taking the next, so while the kernel's send buffer is full
 * (megabytes) the unsent bytes never pass one event per subscription, and the hub's queue fills only
 * at the push interval's pace.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, Server } from "node:http";
import { Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { ApolloServerPlugin, BaseContext } from "@apollo/server";
import { GraphQLError, specifiedRules, type ExecutionArgs, type ExecutionResult, type GraphQLFormattedError, type GraphQLSchema, type ParseOptions, type ValidationRule } from "graphql";
import type { Context as SocketContext, SubscribePayload } from "graphql-ws";
import { useServer, type Extra } from "graphql-ws/use/ws";
import type { Logger } from "pino";
import { WebSocketServer } from "ws";
import { bearerToken, type TokenVerifier } from "../auth/verifier.js";
import { InternalError, RateLimitedError, UnauthenticatedError } from "../errors/errors.js";
import type { RequestGate } from "../http/request-limit-gate.js";
import { formatOperationErrors } from "./operation-errors.js";
import { checkOperation, type CheckedOperation, type OperationChecks } from "./operation-request.js";
import { OperationStream } from "./operation-stream.js";
import { handOverWithOwnErrorListener, socketErrorListener } from "./socket-errors.js";
import { SlowConsumerError } from "./subscriber-queue.js";
import { closeWhenTokenExpires } from "./token-expiry.js";
import { recheckTokenWhileOpen } from "./token-recheck.js";

/** Close codes a client can act on (graphql-ws's own: 4400-4499). */
export const CLOSE_UNAUTHORIZED = 4401;
/**
 * REQUEST_LIMIT refused the connection_init: 1013, "Try Again Later" (RFC 6455's registry), the
 * reason saying how long. Not graphql-ws's 4429, "too many initialisation requests": its client
 * takes that for a fault of its own and never reconnects, so a tab refused once in a burst stopped
 * following the balance for good (an outside audit, with the documented client); 1013 it retries,
 * with its backoff.
 */
export const CLOSE_TOO_MANY_REQUESTS = 1013;
/** graphql-ws's close code for a failure on the server's side. */
export const CLOSE_INTERNAL_ERROR = 4500;
/** "Try again later": the client read too slowly and its events were dropped. */
export const CLOSE_SLOW_CONSUMER = 1013;
/**
 * How often each socket is pinged. graphql-ws's default, 12 s, is a ping a second for every 12
 * subscribers, each a write to its own socket; 30 s still comes well before the usual idle timeouts
 * of proxies and load balancers (60 s and more).
 */
const KEEP_ALIVE_MS = 30_000;
/**
 * How long an event may wait to be written to a socket before the client is taken for one that does
 * not read. A send waits only while the kernel's send buffer is full (it holds megabytes: hundreds
 * or thousands of events), so a client that reads, even on a slow link, frees room long before this;
 * one that stopped reading is dropped a few seconds after its buffers filled.
 */
const SEND_STALL_MS = 5_000;
/** What a subscribe refused for the caller's subscription count is told to wait before trying again. */
const CAP_RETRY_AFTER_SECONDS = 30;
/** How often every socket is checked for a stalled send or too many unsent bytes. */
const SLOW_CHECK_INTERVAL_MS = 1_000;
/**
 * How long a dropped socket has to complete its close (1013) before it is reset. A client that stopped
 * reading never sees the close frame (it waits behind everything unsent), so its connection is reset:
 * closed at once with nothing left in the kernel's buffers, where a plain destroy() would leave them to
 * the kernel (FIN-WAIT-1 with megabytes unsent for minutes).
 */
const SLOW_CLOSE_GRACE_MS = 2_000;

export interface LiveSocketOptions<Ctx> {
  httpServer: Server;
  path: string;
  schema: GraphQLSchema;
  verify: TokenVerifier;
  /** Builds an operation's context from the upgrade request, with the connection's authorization as its header. */
  context: (req: IncomingMessage, requestId: string) => Promise<Ctx>;
  formatError: (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError;
  validationRules?: readonly ValidationRule[];
  /** How documents are parsed: HTTP's parseOptions (the MAX_DOCUMENT_TOKENS limit), so the socket refuses what HTTP refuses. */
  parseOptions?: ParseOptions;
  /**
   * REQUEST_LIMIT's gate, as HTTP runs it before reading a request: every `subscribe` counts against
   * its caller (the token's subject), so a socket is no way around the per-caller limit.
   */
  admit?: RequestGate;
  /**
   * The most subscriptions one caller (the token's subject) may run on this instance, over all its
   * sockets: every change of a balance is one execution per subscriber, so without a bound one
   * account could make each of its own (free, refunded) calls cost the instance seconds.
   */
  maxSubscriptionsPerCaller: number;
  /** JWT_CLOCK_TOLERANCE in ms: a socket is closed that long after its token's `exp`, the leeway it was accepted with. */
  tokenClockToleranceMs?: number;
  maxBufferedBytes: number;
  maxPayloadBytes: number;
  production: boolean;
  logger: Logger;
  onSlowConsumer?: () => void;
}

export interface LiveSocketServer {
  /** Closes every socket (1001) and stops accepting; safe to call more than once. */
  dispose(): Promise<void>;
  /** Apollo's drain hook: the sockets close when Apollo stops. */
  drainPlugin<T extends BaseContext>(): ApolloServerPlugin<T>;
}

/** One subscribe message, from its arrival to its last message. */
interface OperationState {
  /** The operation's own id, in its context, its logs and every error it sends. */
  requestId: string;
  operationName: string | undefined;
  /** Its results as graphql-ws takes them, once it runs (a subscription). */
  stream?: OperationStream<unknown>;
  /**
   * Whether it holds one of its caller's maxSubscriptionsPerCaller places: decided when its
   * subscribe arrives and kept until the operation is refused, fails, completes or its socket closes.
   */
  holdsPlace: boolean;
}

/** What this server keeps on graphql-ws's per-connection `extra` besides the socket and request. */
type ConnectionState = {
  /** "Bearer <JWT>" from connection_init, once verified. */
  authorization: string;
  /** The token's subject, once verified: whose subscriptions this connection's count against. */
  caller: string;
  /** The connection's running operations, by graphql-ws operation id: their errors need their requestId. */
  operations: Map<string, OperationState>;
  /** Set once the connection was dropped as a slow consumer: it is logged, counted and closed once. */
  dropped: boolean;
};

type LiveContext = SocketContext<Record<string, unknown> | undefined, Extra & Partial<ConnectionState>>;

/** The upgrade request as the context factory reads it, with the connection's token as its Authorization header. */
function requestWithAuthorization(request: IncomingMessage, authorization: string): IncomingMessage {
  return { headers: { ...request.headers, authorization }, socket: request.socket } as IncomingMessage;
}

const SEND_AUTHORIZATION = 'Unauthorized: send { authorization: "Bearer <JWT>" } in connection_init';

/** connection_init held no usable `authorization`: the client is told how to send it. */
class MissingConnectionTokenError extends UnauthenticatedError {
  constructor() {
    super(SEND_AUTHORIZATION);
  }
}

/**
 * The token of connection_init's `{ authorization: "Bearer <JWT>" }`. Anything else (no payload, no
 * authorization, not a string, no "Bearer ", "Bearer " alone) is UNAUTHENTICATED: bearerToken throws
 * for a malformed header, and that must close the socket with 4401 like a bad token, not escape
 * graphql-ws's handler (which closes with 4500 and prints a stack).
 */
function connectionToken(params: Record<string, unknown> | undefined): string {
  const raw = params?.authorization;
  let token: string | undefined;
  try {
    token = bearerToken(typeof raw === "string" ? raw : undefined);
  } catch {
    throw new MissingConnectionTokenError();
  }
  if (!token) throw new MissingConnectionTokenError();
  return token;
}

/** The most a WebSocket close reason may hold (RFC 6455: a control frame's 125 bytes less the code's 2). */
const MAX_CLOSE_REASON_BYTES = 123;

/**
 * Why the socket is closed with 4401, in the words HTTP would use for the same token ("Token
 * expired: sign in again"), so a client that did send a token learns what is wrong with it; only a
 * connection_init without one is told how to send it. Cut to the close reason's 123 bytes.
 */
function unauthorizedCloseReason(err: unknown): string {
  const reason = err instanceof UnauthenticatedError && !(err instanceof MissingConnectionTokenError) ? err.message : SEND_AUTHORIZATION;
  return fitCloseReason(reason);
}

/** `reason` within MAX_CLOSE_REASON_BYTES of UTF-8, cut at a character boundary with an ellipsis. */
function fitCloseReason(reason: string): string {
  if (Buffer.byteLength(reason) <= MAX_CLOSE_REASON_BYTES) return reason;
  let cut = "";
  for (const char of reason) {
    if (Buffer.byteLength(cut + char) > MAX_CLOSE_REASON_BYTES - Buffer.byteLength("…")) break;
    cut += char;
  }
  return `${cut}…`;
}

/** What the log says about a refused connection: the verifier's message names the problem, never the token. */
function refusalReason(err: unknown): string {
  return err instanceof UnauthenticatedError ? err.message : "token verification failed";
}

function operationsOf(ctx: LiveContext): Map<string, OperationState> {
  return (ctx.extra.operations ??= new Map());
}

/** The operation's state, or a new one for an operation graphql-ws reports on that this server never saw start. */
function operationOf(ctx: LiveContext, id: string): OperationState {
  return operationsOf(ctx).get(id) ?? { requestId: randomUUID(), operationName: undefined, holdsPlace: false };
}

function isAsyncIterable(value: unknown): value is AsyncIterable<ExecutionResult> {
  return typeof value === "object" && value !== null && typeof (value as Partial<AsyncIterable<unknown>>)[Symbol.asyncIterator] === "function";
}

/** When the oldest event still being written to this connection's socket was handed out; undefined: none is. */
function oldestUnsentSince(ctx: LiveContext): number | undefined {
  let oldest: number | undefined;
  for (const operation of operationsOf(ctx).values()) {
    const since = operation.stream?.sendingSince;
    if (since !== undefined && (oldest === undefined || since < oldest)) oldest = since;
  }
  return oldest;
}

/**
 * Resets a connection: RST, and the socket is gone at once with whatever the kernel still held for
 * it. A plain destroy() (ws's terminate()) would close the descriptor but leave the unsent bytes to
 * the kernel, which goes on offering them to a client that does not read.
 */
function resetConnection(ctx: LiveContext): void {
  const socket = ctx.extra.socket;
  if (socket.readyState === socket.CLOSED) return;
  // The upgrade's TCP socket: ws writes to it.
  const tcp = ctx.extra.request.socket;
  try {
    if (tcp instanceof Socket && !tcp.destroyed) {
      tcp.resetAndDestroy();
      return;
    }
  } catch {
    // Not a plain TCP handle (TLS terminated in process): destroyed below instead.
  }
  socket.terminate();
}

export function attachLiveSocket<Ctx>(options: LiveSocketOptions<Ctx>): LiveSocketServer {
  const log = options.logger.child({ component: "live" });
  // Upgrades are handed over from the HTTP server here (noServer), as ws does itself with `server`,
  // but without ws re-emitting the HTTP server's own errors (a port in use, a host that cannot be
  // listened on): graphql-ws answers any error of the WebSocket server by printing "Internal error
  // emitted on the WebSocket server" with a stack, before listen() could report it with its variable.
  const wsServer = new WebSocketServer({ noServer: true, path: options.path, maxPayload: options.maxPayloadBytes });
  // A client's bad frame is logged here at info, not printed with a stack by graphql-ws (src/live/socket-errors.ts).
  const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer) =>
    wsServer.handleUpgrade(request, socket, head, (socketUpgraded) =>
      handOverWithOwnErrorListener(
        socketUpgraded,
        () => wsServer.emit("connection", socketUpgraded, request),
        socketErrorListener(socketUpgraded, log, CLOSE_INTERNAL_ERROR),
      ),
    );
  options.httpServer.on("upgrade", onUpgrade);
  const checks: OperationChecks = {
    schema: options.schema,
    rules: [...specifiedRules, ...(options.validationRules ?? [])],
    parseOptions: options.parseOptions,
    // As Apollo's hideSchemaDetailsFromClientErrors, which create-app sets in production.
    hideSuggestions: options.production,
  };

  /** Acknowledged connections, checked every SLOW_CHECK_INTERVAL_MS for a client that does not read. */
  const connections = new Set<LiveContext>();
  /** Acknowledged connections by caller, for maxSubscriptionsPerCaller. */
  const connectionsByCaller = new Map<string, Set<LiveContext>>();

  function trackConnection(ctx: LiveContext, caller: string): void {
    connections.add(ctx);
    let own = connectionsByCaller.get(caller);
    if (!own) connectionsByCaller.set(caller, (own = new Set()));
    own.add(ctx);
  }

  function forgetConnection(ctx: LiveContext): void {
    connections.delete(ctx);
    const caller = ctx.extra.caller;
    const own = caller === undefined ? undefined : connectionsByCaller.get(caller);
    if (!own) return;
    own.delete(ctx);
    if (own.size === 0) connectionsByCaller.delete(caller!);
  }

  /** The places of maxSubscriptionsPerCaller the connection's caller holds on this instance, over all its sockets. */
  function placesHeldByCaller(ctx: LiveContext): number {
    let count = 0;
    for (const connection of connectionsByCaller.get(ctx.extra.caller ?? "") ?? [ctx]) {
      for (const operation of operationsOf(connection).values()) if (operation.holdsPlace) count++;
    }
    return count;
  }

  /**
   * Drops a connection that does not read its events, once: one log line and one count per socket
   * (however many subscriptions it had), a close with 1013, and all its subscriptions ended at once.
   * Ending them here matters: once the socket is CLOSING, graphql-ws's sends return at once without
   * writing, so its other subscriptions would keep taking events (never falling behind). The close
   * frame waits behind everything unsent, which a client that stopped reading never reads: the
   * connection is reset if it has not closed within SLOW_CLOSE_GRACE_MS.
   */
  function dropSlowConnection(ctx: LiveContext, cause: "stalled" | "buffered" | "queued", details: Record<string, unknown> = {}): void {
    if (ctx.extra.dropped) return;
    ctx.extra.dropped = true;
    const socket = ctx.extra.socket;
    log.warn(
      { event: "live.slow_consumer", cause, subscriptions: Object.keys(ctx.subscriptions).length, bufferedBytes: socket.bufferedAmount, ...details },
      "closing a live-balance socket that does not read its events",
    );
    options.onSlowConsumer?.();
    socket.close(CLOSE_SLOW_CONSUMER, "Too slow: events were not read; reconnect to resume");
    for (const subscription of Object.values(ctx.subscriptions)) {
      const iterator = subscription as AsyncGenerator<unknown> | null;
      if (iterator && typeof iterator.return === "function") void iterator.return(undefined).catch(() => undefined);
    }
    const reset = setTimeout(() => resetConnection(ctx), SLOW_CLOSE_GRACE_MS);
    reset.unref();
    socket.once("close", () => clearTimeout(reset));
  }

  /** Drops every connection whose socket has too much unsent, or an event unsent for SEND_STALL_MS. */
  function checkSlowConnections(): void {
    const now = Date.now();
    for (const ctx of connections) {
      if (ctx.extra.dropped) continue;
      const unsent = ctx.extra.socket.bufferedAmount;
      if (unsent > options.maxBufferedBytes) {
        dropSlowConnection(ctx, "buffered");
        continue;
      }
      const since = oldestUnsentSince(ctx);
      if (since !== undefined && now - since >= SEND_STALL_MS) dropSlowConnection(ctx, "stalled", { unsentForMs: now - since });
    }
  }
  const slowCheck = setInterval(checkSlowConnections, SLOW_CHECK_INTERVAL_MS);
  slowCheck.unref();

  const formatErrors = (operation: OperationState, errors: readonly GraphQLError[]): GraphQLFormattedError[] =>
    formatOperationErrors(errors, { ...operation, logger: log, formatError: options.formatError });

  /** graphql-ws's execution arguments for a checked operation, with the context an HTTP request gets. */
  async function executionArgs(ctx: LiveContext, checked: CheckedOperation, requestId: string): Promise<ExecutionArgs> {
    const request = requestWithAuthorization(ctx.extra.request, ctx.extra.authorization ?? "");
    return {
      schema: options.schema,
      document: checked.document,
      operationName: checked.operationName,
      variableValues: checked.variableValues,
      contextValue: await options.context(request, requestId),
    };
  }

  /**
   * REQUEST_LIMIT for a connection_init, counted like an HTTP request (the token's subject, else the
   * client address, so a flood of bad tokens is one caller): refused, the socket closes with 1013 and
   * the wait in its reason.
   */
  async function admitConnection(ctx: LiveContext): Promise<boolean> {
    if (!options.admit) return true;
    const raw = ctx.connectionParams?.authorization;
    const refusal = await options.admit(requestWithAuthorization(ctx.extra.request, typeof raw === "string" ? raw : ""));
    if (!refusal) return true;
    log.info({ event: "live.rate_limited", retryAfterSeconds: refusal.retryAfterSeconds }, "live-balance connection refused: REQUEST_LIMIT");
    ctx.extra.socket.close(CLOSE_TOO_MANY_REQUESTS, fitCloseReason(refusal.message));
    return false;
  }

  /**
   * Verifies the connection's token again every minute while it is open (src/live/token-recheck.ts):
   * refused now (its key removed from the key set), the socket closes with 4401 and the verifier's
   * words, as at connection_init; a key set that cannot be read leaves it open (the token may be good).
   */
  function recheckToken(ctx: LiveContext, token: string): void {
    const socket = ctx.extra.socket;
    recheckTokenWhileOpen(socket, {
      verify: () => options.verify(token),
      refused(err) {
        log.info({ event: "live.token_refused", reason: refusalReason(err) }, "live-balance connection closed: its token is no longer accepted");
        socket.close(CLOSE_UNAUTHORIZED, unauthorizedCloseReason(err));
      },
      unchecked(err) {
        const cause = err instanceof InternalError ? (err.cause ?? err) : err;
        log.warn({ event: "live.token_recheck_unavailable", err: cause }, "live-balance token could not be checked again; the connection stays open");
      },
    });
  }

  /** REQUEST_LIMIT for one `subscribe`: a refusal is RATE_LIMITED for that operation alone, before it is parsed. */
  async function admitOperation(ctx: LiveContext): Promise<GraphQLError | undefined> {
    if (!options.admit) return undefined;
    const refusal = await options.admit(requestWithAuthorization(ctx.extra.request, ctx.extra.authorization ?? ""));
    return refusal ? new RateLimitedError(refusal.message, refusal.retryAfterSeconds) : undefined;
  }

  /**
   * maxSubscriptionsPerCaller for a `subscribe` that has just arrived: whether its caller has a place
   * left for it. Asked before anything is awaited: graphql-ws calls onSubscribe as each message
   * arrives, so places go in arrival order (the first ones of a burst run, the rest are refused)
   * however long each operation's start then takes. Counted after an await, a burst found itself
   * counted in full, refusals included until their error went out, and nearly all of it was refused.
   */
  function hasPlaceLeft(ctx: LiveContext): boolean {
    return placesHeldByCaller(ctx) < options.maxSubscriptionsPerCaller;
  }

  /** A `subscribe` past maxSubscriptionsPerCaller: RATE_LIMITED for that operation alone. */
  function capRefusal(): GraphQLError {
    return new RateLimitedError(
      `Too many live subscriptions: at most ${options.maxSubscriptionsPerCaller} per caller on one server ` +
        "(LIVE_MAX_SUBSCRIPTIONS_PER_CALLER), over all its connections; complete one before starting another",
      CAP_RETRY_AFTER_SECONDS,
    );
  }

  /**
   * Checks a subscribe message and builds its execution arguments, under a requestId of its own.
   * Every failure is returned as errors, never thrown: graphql-ws then sends them as an `error`
   * message for this operation alone (through onError, which formats them), where a throw would close
   * the whole socket with 4500, ending its other subscriptions, and print a stack.
   */
  async function startOperation(ctx: LiveContext, id: string, payload: SubscribePayload): Promise<ExecutionArgs | readonly GraphQLError[]> {
    const holdsPlace = hasPlaceLeft(ctx);
    const operation: OperationState = { requestId: randomUUID(), operationName: payload.operationName ?? undefined, holdsPlace };
    operationsOf(ctx).set(id, operation);
    let result: ExecutionArgs | readonly GraphQLError[];
    try {
      // Every subscribe counts against REQUEST_LIMIT, one refused for the cap included.
      const refusal = await admitOperation(ctx);
      if (refusal) return [refusal];
      // The cap answers only a subscription that would run: a bad document, or a query or mutation
      // (refused over the socket whatever the count), says what is wrong with it, not "come back later".
      const checked = checkOperation(payload, checks);
      if (Array.isArray(checked)) result = checked;
      else if (!holdsPlace) return [capRefusal()];
      else result = await executionArgs(ctx, checked, operation.requestId);
    } catch (err) {
      // Our failure, not the client's: onError masks it as INTERNAL_SERVER_ERROR and logs it at error.
      result = [new GraphQLError("could not start the operation", { originalError: err instanceof Error ? err : new Error(String(err)) })];
    }
    // A client that completed the operation meanwhile hears nothing more of it (graphql-ws calls
    // neither onError nor onComplete), so it is forgotten here.
    if (!(id in ctx.subscriptions)) operationsOf(ctx).delete(id);
    return result;
  }

  const cleanup = useServer<Record<string, unknown> | undefined, ConnectionState>(
    {
      schema: options.schema,
      isProd: options.production,
      // graphql-ws closes a socket whose connection_init has not been handled within 3 s by default
      // (4408); a busy instance taking a reconnect wave of many clients needs longer.
      connectionInitWaitTimeout: 15_000,
      async onConnect(ctx) {
        try {
          if (!(await admitConnection(ctx))) return false;
          const token = connectionToken(ctx.connectionParams);
          const viewer = await options.verify(token);
          ctx.extra.authorization = `Bearer ${token}`;
          ctx.extra.caller = viewer.id;
          ctx.extra.dropped = false;
          closeWhenTokenExpires(ctx.extra.socket, token, CLOSE_UNAUTHORIZED, { toleranceMs: options.tokenClockToleranceMs });
          recheckToken(ctx, token);
          // Watched until onClose; a socket that closed while its token was checked is not (onClose has run).
          if (ctx.extra.socket.readyState === ctx.extra.socket.OPEN) trackConnection(ctx, viewer.id);
          return true;
        } catch (err) {
          if (err instanceof InternalError) {
            // Our fault (the key set could not be read), not the token's: the client may retry as is.
            log.error({ event: "live.auth_unavailable", err: err.cause ?? err }, "live-balance connection refused: the token could not be checked");
            ctx.extra.socket.close(CLOSE_INTERNAL_ERROR, "Internal error: the token could not be checked; try again");
            return false;
          }
          // A client's mistake: one line at info, no stack (DESIGN.md, "Errors").
          const hadToken = typeof ctx.connectionParams?.authorization === "string" && ctx.connectionParams.authorization.length > 0;
          log.info({ event: "live.unauthorized", hadToken, reason: refusalReason(err) }, "live-balance connection refused: missing or bad token");
          ctx.extra.socket.close(CLOSE_UNAUTHORIZED, unauthorizedCloseReason(err));
          return false;
        }
      },
      onSubscribe: (ctx, id, payload) => startOperation(ctx, id, payload),
      // A subscription's results go through an OperationStream: nothing is sent for it once the
      // client completed it, and the time its results wait to be written is watched.
      onOperation(ctx, id, _payload, _args, result) {
        if (!isAsyncIterable(result)) return undefined;
        const stream = new OperationStream<unknown>(result[Symbol.asyncIterator]());
        const operation = operationsOf(ctx).get(id);
        if (operation) operation.stream = stream;
        return stream as AsyncIterable<ExecutionResult>;
      },
      // A subscriber that fell too far behind (its events queued in the hub: graphql-ws waits for each
      // send to be written before taking the next) ends with SlowConsumerError: the connection as a
      // whole is too slow, so it is closed rather than left with a subscription silently gone.
      onError(ctx, id, _payload, errors) {
        const operation = operationOf(ctx, id);
        operationsOf(ctx).delete(id);
        if (errors.some((e) => e.originalError instanceof SlowConsumerError)) {
          dropSlowConnection(ctx, "queued", { requestId: operation.requestId });
          return undefined;
        }
        // A dropped or closed socket: the error is a send that failed as the connection went (nobody
        // is left to tell, and it is not a fault of the operation's).
        if (ctx.extra.dropped || ctx.extra.socket.readyState !== ctx.extra.socket.OPEN) return undefined;
        return formatErrors(operation, errors);
      },
      onNext(ctx, id, _payload, _args, result) {
        const socket = ctx.extra.socket;
        if (socket.bufferedAmount > options.maxBufferedBytes) dropSlowConnection(ctx, "buffered");
        if (!result.errors) return undefined;
        return { ...result, errors: formatErrors(operationOf(ctx, id), result.errors) };
      },
      onComplete(ctx, id) {
        operationsOf(ctx).delete(id);
      },
      onClose(ctx) {
        forgetConnection(ctx);
      },
    },
    wsServer,
    KEEP_ALIVE_MS,
  );

  let disposed: Promise<void> | undefined;
  const dispose = (): Promise<void> => {
    clearInterval(slowCheck);
    // At once, not once the sockets have closed: an upgrade from now on (a client reconnecting to a
    // stopping instance) is answered by the HTTP server, 503 with Retry-After, instead of by a
    // closing WebSocket server (ws's bare 503) or, after it, by Apollo as a GET (a CSRF 400).
    options.httpServer.off("upgrade", onUpgrade);
    return (disposed ??= Promise.resolve(cleanup.dispose()));
  };
  return {
    dispose,
    drainPlugin: () => ({
      async serverWillStart() {
        return {
          async drainServer() {
            await dispose();
          },
        };
      },
    }),
  };
}
