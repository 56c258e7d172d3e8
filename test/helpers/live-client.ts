/**
 * A graphql-ws client over a real WebSocket (the `ws` package) for live-balance tests: subscribes,
 * records every message with its arrival time, and can wait for one that matches.
 */
import { createClient, type Client } from "graphql-ws";
import WebSocket from "ws";

export interface Received {
  at: number;
  data?: any;
  errors?: any[];
}

export interface LiveSubscription {
  received: Received[];
  completed: Promise<void>;
  /** Resolves with the first message (already received or later) for which `match` holds. */
  waitFor(match: (r: Received) => boolean, timeoutMs?: number): Promise<Received>;
  stop(): void;
}

export interface LiveClient {
  client: Client;
  closed: Promise<{ code: number; reason: string }>;
  subscribe(query: string, variables: Record<string, unknown>): LiveSubscription;
  dispose(): Promise<void>;
}

export function liveClient(httpUrl: string, token: string | undefined): LiveClient {
  let closedResolve!: (value: { code: number; reason: string }) => void;
  const closed = new Promise<{ code: number; reason: string }>((resolve) => (closedResolve = resolve));
  const client = createClient({
    url: httpUrl.replace(/^http/, "ws") + "/graphql",
    webSocketImpl: WebSocket,
    connectionParams: token ? { authorization: `Bearer ${token}` } : {},
    retryAttempts: 0,
    lazy: false,
    on: { closed: (event) => closedResolve({ code: (event as any).code, reason: String((event as any).reason) }) },
    onNonLazyError: () => undefined,
  });
  return {
    client,
    closed,
    subscribe(query, variables) {
      const received: Received[] = [];
      let listeners: (() => void)[] = [];
      const notify = () => listeners.forEach((l) => l());
      let completeResolve!: () => void;
      const completed = new Promise<void>((resolve) => (completeResolve = resolve));
      const stop = client.subscribe(
        { query, variables },
        {
          next: (value) => {
            received.push({ at: performance.now(), data: value.data, errors: value.errors as any[] | undefined });
            notify();
          },
          error: (err) => {
            received.push({ at: performance.now(), errors: Array.isArray(err) ? err : [err] });
            notify();
            completeResolve();
          },
          complete: () => completeResolve(),
        },
      );
      return {
        received,
        completed,
        stop,
        waitFor(match, timeoutMs = 10_000) {
          return new Promise((resolve, reject) => {
            const check = () => {
              const found = received.find(match);
              if (!found) return false;
              clearTimeout(timer);
              listeners = listeners.filter((l) => l !== listener);
              resolve(found);
              return true;
            };
            const listener = () => void check();
            const timer = setTimeout(() => {
              listeners = listeners.filter((l) => l !== listener);
              reject(new Error(`no matching message within ${timeoutMs} ms; got ${JSON.stringify(received)}`));
            }, timeoutMs);
            if (!check()) listeners.push(listener);
          });
        },
      };
    },
    dispose: () => client.dispose() as Promise<void>,
  };
}
