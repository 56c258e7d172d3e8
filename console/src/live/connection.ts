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
 * - A 4401 close (the server refused the token) ends the session: the reason is asked of the server
 *   over HTTP (whose answer says why, e.g. "Token expired: sign in again"), and the app signs out
 *   (api/session.ts), closing this connection with closeLive().
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

export type BalanceEvent = BalanceChangedSubscription["creditBalanceChanged"];

export interface Follower {
  /**
   * A pushed change of one of the subscription's balances; `replayed` when it arrived before this
   * follower joined (the latest of each type is handed to a new follower, whose own query may have
   * been answered before it).
   */
  event(event: BalanceEvent, replayed: boolean): void;
  /** Whether changes are being pushed now (connected, and the subscription running). */
  live(live: boolean): void;
}

/** True when the server announced the live-balance subscription in the page it served. */
export function serverHasLiveBalances(): boolean {
  return document.querySelector('meta[name="graphql-credits-live"]')?.getAttribute("content") === "creditBalanceChanged";
}

interface Stream {
  followers: Set<Follower>;
  /** The latest event of each credit type. */
  latest: Map<string, BalanceEvent>;
  /** The subscription ended (an error, or the server completed it): a new follower starts it again. */
  ended: boolean;
  stop?: () => void;
  linger?: ReturnType<typeof setTimeout>;
}

class LiveSession {
  private closed = false;
  private connected = false;
  private client: Client | undefined;
  private readonly ready: Promise<Client | undefined>;
  private readonly streams = new Map<string, Stream>();

  constructor(readonly token: string) {
    this.ready = import("graphql-ws").then(({ createClient }) => {
      if (this.closed) return undefined;
      const url = new URL("/graphql", window.location.href);
      url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
      this.client = createClient({
        url: url.toString(),
        connectionParams: () => ({ authorization: `Bearer ${this.token}` }),
        retryAttempts: 5,
        lazyCloseTimeout: LINGER_MS,
        on: {
          connected: () => this.setConnected(true),
          closed: (event) => {
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
      stream = { followers: new Set(), latest: new Map(), ended: false };
      this.streams.set(subscriptionId, stream);
      this.start(subscriptionId, stream);
    }
    clearTimeout(stream.linger);
    stream.followers.add(follower);
    follower.live(this.connected && !stream.ended);
    for (const event of stream.latest.values()) follower.event(event, true);
    const joined = stream;
    return () => {
      joined.followers.delete(follower);
      if (this.closed || joined.followers.size > 0) return;
      clearTimeout(joined.linger);
      joined.linger = setTimeout(() => {
        if (joined.followers.size > 0) return;
        joined.stop?.();
        if (this.streams.get(subscriptionId) === joined) this.streams.delete(subscriptionId);
      }, LINGER_MS);
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const stream of this.streams.values()) {
      clearTimeout(stream.linger);
      stream.stop?.();
      for (const follower of stream.followers) follower.live(false);
    }
    this.streams.clear();
    this.connected = false;
    void this.client?.dispose();
  }

  private start(subscriptionId: string, stream: Stream): void {
    void this.ready.then((client) => {
      if (!client || this.closed || this.streams.get(subscriptionId) !== stream) return;
      const end = () => {
        stream.ended = true;
        for (const follower of stream.followers) follower.live(false);
      };
      stream.stop = client.subscribe<BalanceChangedSubscription>(
        { query: BalanceChangedDocument.toString(), variables: { subscriptionId } },
        {
          next: ({ data }) => {
            const event = data?.creditBalanceChanged;
            if (!event) return;
            stream.latest.set(event.type, event);
            for (const follower of stream.followers) follower.event(event, false);
          },
          error: end,
          complete: end,
        },
      );
    });
  }

  private setConnected(connected: boolean): void {
    if (this.closed) return;
    this.connected = connected;
    for (const stream of this.streams.values()) {
      for (const follower of stream.followers) follower.live(connected && !stream.ended);
    }
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
