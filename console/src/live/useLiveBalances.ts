/**
 * Live balances of one subscription. The whole live-balance wiring of the console is this file.
 *
 * - Over graphql-ws (`creditBalanceChanged` on /graphql, console/src/graphql/live.graphql) when the
 *   server's schema has it: the server says so in index.html (<meta name="graphql-credits-live">,
 *   written by src/console/console-route.ts from the served schema), so a server without it never
 *   sees a WebSocket attempt (and the browser logs no failed connection). The token goes in
 *   connection_init as { authorization: "Bearer <JWT>" }.
 * - Refetched after each of the console's own mutations anyway (`refresh`), so a grant shows at once
 *   even before its event arrives.
 */
import { useCallback, useEffect, useMemo, useState } from "react";
import type { BalanceChangedSubscription, BalanceFragment } from "../generated/graphql";
import { BalanceChangedDocument, BalancesDocument } from "../generated/graphql";
import { request } from "../api/client";
import { currentToken } from "../api/token";

/** True when the server announced the live-balance subscription in the page it served. */
export function serverHasLiveBalances(): boolean {
  return document.querySelector('meta[name="graphql-credits-live"]')?.getAttribute("content") === "creditBalanceChanged";
}

/** The latest pushed balance of each type, with the time of the entry that made it. */
type Pushed = Record<string, { balance: number; at: string }>;

/**
 * The snapshot (from a query) with each pushed balance that is newer than it: an event and a query
 * answer can arrive in either order, and the later change wins.
 */
function merge(snapshot: BalanceFragment[] | undefined, pushed: Pushed): BalanceFragment[] | undefined {
  return snapshot?.map((b) => {
    const event = pushed[b.type];
    return event && Date.parse(event.at) >= Date.parse(b.updatedAt) ? { ...b, balance: event.balance, updatedAt: event.at } : b;
  });
}

export interface LiveBalances {
  balances: BalanceFragment[] | undefined;
  /** True while pushed over a WebSocket. */
  live: boolean;
  /** Reads the balances again (after a mutation of the console's own). */
  refresh: () => Promise<void>;
}

export function useLiveBalances(subscriptionId: string, initial: BalanceFragment[] | undefined): LiveBalances {
  const [snapshot, setSnapshot] = useState(initial);
  const [pushed, setPushed] = useState<Pushed>({});
  const [live, setLive] = useState(false);
  useEffect(() => setSnapshot(initial), [initial]);
  const balances = useMemo(() => merge(snapshot, pushed), [snapshot, pushed]);

  const refresh = useCallback(async () => {
    const data = await request(BalancesDocument, { id: subscriptionId });
    setSnapshot(data.subscription.balances);
  }, [subscriptionId]);

  const enabled = useMemo(serverHasLiveBalances, []);
  useEffect(() => {
    if (!enabled) return;
    let disposed = false;
    let dispose: (() => void) | undefined;
    void import("graphql-ws").then(({ createClient }) => {
      if (disposed) return;
      const url = new URL("/graphql", window.location.href);
      url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
      const client = createClient({
        url: url.toString(),
        connectionParams: () => ({ authorization: `Bearer ${currentToken() ?? ""}` }),
        retryAttempts: 5,
      });
      const unsubscribe = client.subscribe<BalanceChangedSubscription>(
        { query: BalanceChangedDocument.toString(), variables: { subscriptionId } },
        {
          next: ({ data }) => {
            const event = data?.creditBalanceChanged;
            if (!event) return;
            setLive(true);
            setPushed((current) => ({ ...current, [event.type]: { balance: event.balance, at: event.lastEntry.createdAt } }));
          },
          error: () => setLive(false),
          complete: () => setLive(false),
        },
      );
      client.on("connected", () => setLive(true));
      dispose = () => {
        unsubscribe();
        void client.dispose();
      };
    });
    return () => {
      disposed = true;
      dispose?.();
    };
  }, [enabled, subscriptionId]);

  return { balances, live, refresh };
}
