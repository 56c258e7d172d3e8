/**
 * The console's one live-balance connection: a graphql-ws client on /graphql per signed-in token,
 * shared by every balance on screen (the customer's list of subscriptions follows each of them,
 * a subscription's page follows that one), with one `creditBalanceChanged` subscription per
 * followed subscription id whoever follows it.
 *
 * - Opened only when the server's schema has `creditBalanceChanged` (the server says so in
 *   index.html: <meta name="graphql-credits-live">, written by src/console/console-route.ts), so a
 *   server without it never sees a WebSocket attempt. The token goes in connection_init as
 *   { authorization: "Bearer <JWT>" }.
 * - Lazy: connected with the first follower, closed a moment after the last one leaves; a
 *   subscription followed again within LINGER_MS (moving from the list to a subscription's page)
 *   is kept rather than completed and sent again.
 * - Never gives up while signed in: a server restart or deploy drops the socket for seconds, and a
 *   page left open must not show stale balances for good. graphql-ws reconnects a dropped socket
 *   (1001, 1006, 1012, 1013 "try again later"…) without limit, waiting longer each time (up to
 *   RETRY_MAX_MS), and sends every running subscription again. A close it treats as final (4500,
 *   4400…) or a stream the server completed is started again here, with the same backoff. Followers
 *   see "reconnecting" meanwhile, and "live" again once it is back (and then read the balances
 *   again: events were missed while it was down).
 * - Live means something arrives: graphql-ws pings the server every KEEP_ALIVE_MS, and a pong that
 *   has not come PONG_TIMEOUT_MS later ends the socket (graphql-ws's terminate(): a socket whose
 *   frames are silently dropped would never close by itself, nor finish a close handshake), so it is
 *   made again as after any loss, and the followers read the balances again once it is back. The
 *   browser going offline ends it at once too, and no new one is tried until it is back online
 *   (then at once, not after the backoff's wait); meanwhile nothing is "live".
 * - A 4401 close (the server refused the token) ends the session: the reason is asked of the server
 *   over HTTP (whose answer says why, e.g. "Token expired: sign in again"), and the app signs out
 *   (api/session.ts), closing this connection with closeLive(). It is never retried. A stream the
 *   server refused with GraphQL errors (e.g. FORBIDDEN) is not retried either: it cannot succeed;
 *   one refused as RATE_LIMITED (subscribes count against REQUEST_LIMIT) is sent again when the
 *   error's retryAfterSeconds have passed.
 */
import type { Client } from "graphql-ws";
import type { BalanceChangedSubscription } from "../generated/graphql";
import { BalanceChangedDocument, SessionDocument } from "../generated/graphql";
import { request } from "../api/client";
import { reportUnauthenticated } from "../api/session";
import { currentToken } from "../api/token";

/** graphql-ws's close code for a refused connection_init (the server's bad or missing token). */
export const CLOSE_UNAUTHORIZED = 4401;
/** How long a subscription nobody follows any more is kept, for a page that follows it next. */
const LINGER_MS = 1_000;
/** The first reconnection waits this long, each next one twice as long, up to RETRY_MAX_MS. */
const RETRY_FIRST_MS = 1_000;
const RETRY_MAX_MS = 15_000;
/** graphql-ws sends a ping this long after the socket opened, and after each pong. */
const KEEP_ALIVE_MS = 10_000;
/** A ping not answered within this is a dead connection (frames dropped): the socket is ended and made again. */
const PONG_TIMEOUT_MS = 5_000;

/**
 * What a follower shows: "connecting" (the first connection), "live" (pushed now), "reconnecting"
 * (the connection was lost and is being made again: the balances may be behind), "off" (not
 * pushed: the server refused this subscription).
 */
export type LiveState = "connecting" | "live" | "reconnecting" | "off";

/** How long to wait before the retry after `failures` failed attempts, with some jitter so that pages do not come back at once. */
export function retryDelay(failures: number): number {
  const base = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** Math.max(0, failures));
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

export type BalanceEvent = BalanceChangedSubscription["creditBalanceChanged"];

export interface Follower {
  /**
   * A pushed change of one of the subscription's balances; `replayed` when it arrived before this
   * follower joined (the latest of each type is handed to a new follower, whose own query may have
   * been answered before it).
   */
  event(event: BalanceEvent, replayed: boolean): void;
  /** Whether changes are being pushed now (connected, and the subscription running), or why not. */
  state(state: LiveState): void;
}

/** True when the server announced the live-balance subscription in the page it served. */
export function serverHasLiveBalances(): boolean {
  return document.querySelector('meta[name="graphql-credits-live"]')?.getAttribute("content") === "creditBalanceChanged";
}

interface Stream {
  followers: Set<Follower>;
  /** The latest event of each credit type. */
  latest: Map<string, BalanceEvent>;
  /** The server refused the subscription (GraphQL errors): not retried; a new follower starts it again. */
  ended: boolean;
  /** Waiting to start the subscription again after it failed or the server completed it. */
  retry?: ReturnType<typeof setTimeout>;
  /** Failed starts since the last event, for the backoff. */
  failures: number;
  /** Stopped here (nobody follows it, or signed out): its completion is not a failure. */
  stopped: boolean;
  stop?: () => void;
  linger?: ReturnType<typeof setTimeout>;
}

/** Seconds to wait when the server refused a subscribe as RATE_LIMITED (GraphQL errors), else undefined. */
function rateLimitedFor(error: unknown): number | undefined {
  if (!Array.isArray(error)) return undefined;
  const limited = error.find((e: { extensions?: { code?: unknown } }) => e?.extensions?.code === "RATE_LIMITED") as
    | { extensions: { retryAfterSeconds?: unknown } }
    | undefined;
  if (!limited) return undefined;
  const seconds = Number(limited.extensions.retryAfterSeconds);
  return Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds, 120) : 1;
}

/** A graphql-ws close event (as opposed to GraphQL errors or an Error). */
function closeCodeOf(error: unknown): number | undefined {
  return typeof error === "object" && error !== null && "code" in error && typeof (error as { code: unknown }).code === "number"
    ? (error as { code: number }).code
    : undefined;
}

class LiveSession {
  private closed = false;
  private connected = false;
  /** The connection was lost at least once while something was followed: not connected is "reconnecting". */
  private dropped = false;
  private client: Client | undefined;
  private readonly ready: Promise<Client | undefined>;
  private readonly streams = new Map<string, Stream>();
  /** The browser says it is offline: no socket is trusted, and none is tried until it is online again. */
  private offline = typeof navigator !== "undefined" && navigator.onLine === false;
  /** A ping sent and its pong not arrived yet: ends the socket when it fires. */
  private pongTimer: ReturnType<typeof setTimeout> | undefined;
  /** Reconnections waiting (the backoff, or for the browser to be online): called to try at once. */
  private readonly wakers = new Set<() => void>();
  private readonly wentOffline = () => {
    this.offline = true;
    if (this.streams.size > 0) this.dropped = true;
    this.notify();
    // Its frames cannot arrive: end it now rather than show it live (graphql-ws then waits in retryWait).
    this.client?.terminate();
  };
  private readonly cameOnline = () => {
    this.offline = false;
    this.notify();
    for (const wake of [...this.wakers]) wake();
  };

  constructor(readonly token: string) {
    window.addEventListener("offline", this.wentOffline);
    window.addEventListener("online", this.cameOnline);
    this.ready = import("graphql-ws").then(({ createClient }) => {
      if (this.closed) return undefined;
      const url = new URL("/graphql", window.location.href);
      url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
      this.client = createClient({
        url: url.toString(),
        connectionParams: () => ({ authorization: `Bearer ${this.token}` }),
        // Without limit while signed in (closeLive() disposes of the client); 4401 is final in graphql-ws.
        retryAttempts: Infinity,
        retryWait: (retries) => this.waitToRetry(retries),
        lazyCloseTimeout: LINGER_MS,
        keepAlive: KEEP_ALIVE_MS,
        on: {
          connected: () => this.setConnected(true),
          ping: (received) => {
            // Sent by us: its pong must come back in time (graphql-ws's documented keepAlive recipe,
            // ending the socket with terminate(), which does not wait for a close the network may never deliver).
            if (received) return;
            clearTimeout(this.pongTimer);
            this.pongTimer = setTimeout(() => this.client?.terminate(), PONG_TIMEOUT_MS);
          },
          pong: (received) => {
            if (received) clearTimeout(this.pongTimer);
          },
          closed: (event) => {
            clearTimeout(this.pongTimer);
            if (this.streams.size > 0) this.dropped = true;
            this.setConnected(false);
            const close = event as { code?: number; reason?: string };
            if (!this.closed && close.code === CLOSE_UNAUTHORIZED) void this.refused(close.reason);
          },
        },
      });
      return this.client;
    });
  }

  follow(subscriptionId: string, follower: Follower): () => void {
    let stream = this.streams.get(subscriptionId);
    if (stream?.ended) {
      this.streams.delete(subscriptionId);
      stream = undefined;
    }
    if (!stream) {
      stream = { followers: new Set(), latest: new Map(), ended: false, failures: 0, stopped: false };
      this.streams.set(subscriptionId, stream);
      this.start(subscriptionId, stream);
    }
    clearTimeout(stream.linger);
    stream.followers.add(follower);
    follower.state(this.stateOf(stream));
    for (const event of stream.latest.values()) follower.event(event, true);
    const joined = stream;
    return () => {
      joined.followers.delete(follower);
      if (this.closed || joined.followers.size > 0) return;
      clearTimeout(joined.linger);
      joined.linger = setTimeout(() => {
        if (joined.followers.size > 0) return;
        joined.stopped = true;
        clearTimeout(joined.retry);
        joined.stop?.();
        if (this.streams.get(subscriptionId) === joined) this.streams.delete(subscriptionId);
      }, LINGER_MS);
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    window.removeEventListener("offline", this.wentOffline);
    window.removeEventListener("online", this.cameOnline);
    clearTimeout(this.pongTimer);
    for (const wake of [...this.wakers]) wake();
    for (const stream of this.streams.values()) {
      clearTimeout(stream.linger);
      clearTimeout(stream.retry);
      stream.stopped = true;
      stream.stop?.();
      for (const follower of stream.followers) follower.state("off");
    }
    this.streams.clear();
    this.connected = false;
    void this.client?.dispose();
  }

  private start(subscriptionId: string, stream: Stream): void {
    void this.ready.then((client) => {
      if (!client || this.closed || stream.stopped || this.streams.get(subscriptionId) !== stream) return;
      let finished = false;
      const finish = (error: unknown) => {
        if (finished || this.closed || stream.stopped || this.streams.get(subscriptionId) !== stream) return;
        finished = true;
        stream.stop = undefined;
        const code = closeCodeOf(error);
        if (code === CLOSE_UNAUTHORIZED) return; // the session ends (refused()); a retry cannot succeed
        const retryAfter = rateLimitedFor(error);
        if (retryAfter !== undefined) {
          // Over the caller's request limit (REQUEST_LIMIT counts subscribes): the same request
          // succeeds once the limit allows it, so it is sent again then, shown as reconnecting.
          stream.failures++;
          stream.retry = setTimeout(() => {
            stream.retry = undefined;
            this.start(subscriptionId, stream);
          }, retryAfter * 1000);
        } else if (Array.isArray(error)) {
          // The server refused this subscription (GraphQL errors): the same request would be refused again.
          stream.ended = true;
        } else {
          // A lost connection graphql-ws gave up on (4500…), or the server completed the stream (a
          // shutdown): start it again, later each time.
          if (code !== undefined) this.dropped = true;
          stream.retry = setTimeout(() => {
            stream.retry = undefined;
            this.start(subscriptionId, stream);
          }, retryDelay(stream.failures++));
        }
        this.notify();
      };
      stream.stop = client.subscribe<BalanceChangedSubscription>(
        { query: BalanceChangedDocument.toString(), variables: { subscriptionId } },
        {
          next: ({ data }) => {
            const event = data?.creditBalanceChanged;
            if (!event) return;
            stream.failures = 0;
            stream.latest.set(event.type, event);
            for (const follower of stream.followers) follower.event(event, false);
          },
          error: finish,
          complete: () => finish(undefined),
        },
      );
      this.notify();
    });
  }

  /**
   * graphql-ws's wait before reconnecting: the backoff, cut short when the browser comes back
   * online; while it is offline, until then (a socket could not open, or not be trusted).
   */
  private waitToRetry(retries: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = this.offline ? undefined : setTimeout(() => wake(), retryDelay(retries));
      const wake = () => {
        clearTimeout(timer);
        this.wakers.delete(wake);
        resolve();
      };
      this.wakers.add(wake);
    });
  }

  private stateOf(stream: Stream): LiveState {
    if (this.closed || stream.ended) return "off";
    if (this.offline) return this.dropped || stream.failures > 0 ? "reconnecting" : "connecting";
    if (this.connected && stream.retry === undefined && stream.stop) return "live";
    return this.dropped || stream.failures > 0 ? "reconnecting" : "connecting";
  }

  /** Tells every follower its stream's state (after any change of the connection or of a stream). */
  private notify(): void {
    if (this.closed) return;
    for (const stream of this.streams.values()) {
      const state = this.stateOf(stream);
      for (const follower of stream.followers) follower.state(state);
    }
  }

  private setConnected(connected: boolean): void {
    if (this.closed) return;
    this.connected = connected;
    this.notify();
  }

  /** The server closed the socket with 4401: ask it why over HTTP, and end the session either way. */
  private async refused(closeReason: string | undefined): Promise<void> {
    try {
      // Refused there too: request() reports the server's own reason (api/session.ts), and the app signs out.
      await request(SessionDocument, {});
    } catch {
      // An UNAUTHENTICATED answer was reported by request(); any other failure falls through.
    }
    if (currentToken() === this.token) reportUnauthenticated(closeReason || "The server refused the token for live balances.", this.token);
  }
}

let session: LiveSession | undefined;

/**
 * Follows a subscription's balances over the signed-in token's connection; returns the unfollow.
 * Without live balances on the server (or without a token) nothing is opened, and it is never live.
 */
export function followBalances(subscriptionId: string, follower: Follower): () => void {
  const token = currentToken();
  if (!token || !serverHasLiveBalances()) return () => undefined;
  if (session?.token !== token) {
    session?.close();
    session = new LiveSession(token);
  }
  return session.follow(subscriptionId, follower);
}

/** Closes the live connection (signing out, or another token signed in). */
export function closeLive(): void {
  session?.close();
  session = undefined;
}
