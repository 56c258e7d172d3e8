/**
 * graphql-ws on the HTTP server's own port and path (/graphql), as Apollo Server documents it:
 * a `ws` WebSocketServer on the http.Server, graphql-ws's useServer, and a drain plugin that closes
 * the sockets when Apollo stops. Authentication is the connection_init payload
 * `{ "authorization": "Bearer <JWT>" }`; a missing or bad token closes the socket with 4401. Each
 * operation gets the same context an HTTP request gets. A client that does not read is closed with
 * 1013 rather than buffered for: when its socket's unsent bytes pass `maxBufferedBytes`, or when one
 * of its subscriptions falls the hub's queue bound behind.
 */
import type { IncomingMessage, Server } from "node:http";
import type { ApolloServerPlugin, BaseContext } from "@apollo/server";
import { specifiedRules, validate, type GraphQLFormattedError, type GraphQLSchema, type ValidationRule } from "graphql";
import { useServer } from "graphql-ws/use/ws";
import type { Logger } from "pino";
import { WebSocketServer } from "ws";
import { bearerToken, type TokenVerifier } from "../auth/verifier.js";
import { requestIdFrom } from "../http/request-id.js";
import { SlowConsumerError } from "./subscriber-queue.js";

/** Close codes a client can act on (graphql-ws's own: 4400-4499). */
export const CLOSE_UNAUTHORIZED = 4401;
/** "Try again later": the client read too slowly and its events were dropped. */
export const CLOSE_SLOW_CONSUMER = 1013;
/**
 * How often each socket is pinged. graphql-ws's default, 12 s, is a ping a second for every 12
 * subscribers, each a write to its own socket; 30 s still comes well before the usual idle timeouts
 * of proxies and load balancers (60 s and more).
 */
const KEEP_ALIVE_MS = 30_000;

export interface LiveSocketOptions<Ctx> {
  httpServer: Server;
  path: string;
  schema: GraphQLSchema;
  verify: TokenVerifier;
  /** Builds an operation's context from the upgrade request, with the connection's authorization as its header. */
  context: (req: IncomingMessage, requestId: string) => Promise<Ctx>;
  formatError: (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError;
  validationRules?: readonly ValidationRule[];
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

/** What this server keeps on graphql-ws's per-connection `extra` besides the socket and request. */
type ConnectionState = {
  /** "Bearer <JWT>" from connection_init, once verified. */
  authorization: string;
};

/** The upgrade request as the context factory reads it, with the connection's token as its Authorization header. */
function requestWithAuthorization(request: IncomingMessage, authorization: string): IncomingMessage {
  return { headers: { ...request.headers, authorization }, socket: request.socket } as IncomingMessage;
}

/**
 * Closes a socket that does not read (1013) and ends all its subscriptions at once. Ending them here
 * matters: once the socket is CLOSING, graphql-ws's sends return at once without writing, so its
 * other subscriptions would keep taking events (never falling behind) until the close handshake,
 * which a client that does not read never completes, times out.
 */
function dropSlowConnection(ctx: { extra: { socket: { close(code: number, reason: string): void } }; subscriptions: Record<string, unknown> }): void {
  ctx.extra.socket.close(CLOSE_SLOW_CONSUMER, "Too slow: events were not read; reconnect to resume");
  for (const subscription of Object.values(ctx.subscriptions)) {
    const iterator = subscription as AsyncGenerator<unknown> | null;
    if (iterator && typeof iterator.return === "function") void iterator.return(undefined).catch(() => undefined);
  }
}

export function attachLiveSocket<Ctx>(options: LiveSocketOptions<Ctx>): LiveSocketServer {
  const log = options.logger.child({ component: "live" });
  const wsServer = new WebSocketServer({ server: options.httpServer, path: options.path, maxPayload: options.maxPayloadBytes });
  const rules = [...specifiedRules, ...(options.validationRules ?? [])];

  const cleanup = useServer<Record<string, unknown> | undefined, ConnectionState>(
    {
      schema: options.schema,
      isProd: options.production,
      // graphql-ws closes a socket whose connection_init has not been handled within 3 s by default
      // (4408); a busy instance taking a reconnect wave of many clients needs longer.
      connectionInitWaitTimeout: 15_000,
      validate: (schema, document) => validate(schema, document, rules),
      async onConnect(ctx) {
        const raw = ctx.connectionParams?.authorization;
        const token = bearerToken(typeof raw === "string" ? raw : undefined);
        try {
          if (!token) throw new Error("no token");
          await options.verify(token);
        } catch {
          log.info({ event: "live.unauthorized", hadToken: Boolean(token) }, "live-balance connection refused: missing or bad token");
          ctx.extra.socket.close(CLOSE_UNAUTHORIZED, "Unauthorized: send { authorization: \"Bearer <JWT>\" } in connection_init");
          return false;
        }
        ctx.extra.authorization = `Bearer ${token}`;
        return true;
      },
      context: (ctx) =>
        options.context(
          requestWithAuthorization(ctx.extra.request, ctx.extra.authorization ?? ""),
          requestIdFrom(ctx.extra.request.headers["x-request-id"]),
        ) as Promise<Record<string, unknown>>,
      // A subscriber that fell too far behind (its events queued in the hub: graphql-ws waits for each
      // send to be written before taking the next) ends with SlowConsumerError: the connection as a
      // whole is too slow, so it is closed rather than left with a subscription silently gone.
      onError(ctx, _id, _payload, errors) {
        if (!errors.some((e) => e.originalError instanceof SlowConsumerError)) return undefined;
        log.warn({ event: "live.slow_consumer", queued: true }, "closing a live-balance socket that does not read its events");
        dropSlowConnection(ctx);
        return undefined;
      },
      onNext(ctx, _id, _payload, _args, result) {
        const socket = ctx.extra.socket;
        if (socket.bufferedAmount > options.maxBufferedBytes) {
          log.warn({ event: "live.slow_consumer", bufferedBytes: socket.bufferedAmount }, "closing a live-balance socket that does not read its events");
          options.onSlowConsumer?.();
          dropSlowConnection(ctx);
        }
        if (!result.errors) return undefined;
        return { ...result, errors: result.errors.map((e) => options.formatError(e.toJSON(), e)) };
      },
    },
    wsServer,
    KEEP_ALIVE_MS,
  );

  let disposed: Promise<void> | undefined;
  const dispose = (): Promise<void> => (disposed ??= Promise.resolve(cleanup.dispose()));
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
