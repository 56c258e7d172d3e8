/**
 * Live balances of one subscription, wherever they are shown (the customer's list of
 * subscriptions, a subscription's page).
 *
 * - Pushed over the console's one graphql-ws connection (./connection.ts: `creditBalanceChanged`),
 *   when the server's schema has it. A pushed balance shows at once.
 * - Each push also reads the subscription's balances again (`Balances`, coalesced: a burst of
 *   events reads once), since an event carries the balance but not `held` (credits taken by calls
 *   still running).
 * - While credits are held, read again every HELD_POLL_MS as well: a call that costs exactly what
 *   it held settles without a ledger entry, so without an event.
 * - Read again after each of the console's own mutations anyway (`refresh`), so a grant shows at
 *   once even before its event arrives.
 * - Read again when the connection is back after it was lost ("reconnecting" to "live"): the events
 *   of the meantime were missed. `changes` counts pushed events and reconnections, for what else on
 *   the page is made of the balances (the grants) to be read again too.
 */
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import type { BalanceFragment } from "../generated/graphql";
import { BalancesDocument } from "../generated/graphql";
import { request } from "../api/client";
import { followBalances, type LiveState } from "./connection";

export { serverHasLiveBalances, type LiveState } from "./connection";

/** A burst of events (or events and a poll) within this reads the balances once. */
const REFRESH_DELAY_MS = 200;
/** While credits are held, the balances are read again this often. */
const HELD_POLL_MS = 3_000;

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
  /** "live" while pushed over a WebSocket; "reconnecting" while that connection is being made again. */
  live: LiveState;
  /** Counts the changes pushed (and reconnections, after which some may have been missed). */
  changes: number;
  /** Reads the balances again (after a mutation of the console's own). */
  refresh: () => Promise<void>;
}

export function useLiveBalances(subscriptionId: string, initial: BalanceFragment[] | undefined): LiveBalances {
  const [snapshot, setSnapshot] = useState(initial);
  const [pushed, setPushed] = useState<Pushed>({});
  const [live, setLive] = useState<LiveState>("off");
  const [changes, setChanges] = useState(0);
  useEffect(() => setSnapshot(initial), [initial]);
  const balances = useMemo(() => merge(snapshot, pushed), [snapshot, pushed]);

  // Answers can come back out of order (a mutation's refresh and an event's): the latest read wins.
  const latest = useRef(0);
  const refresh = useCallback(async () => {
    const ticket = ++latest.current;
    const data = await request(BalancesDocument, { id: subscriptionId });
    if (ticket === latest.current) setSnapshot(data.subscription.balances);
  }, [subscriptionId]);

  // One read at a time, coalescing what asks for one meanwhile; nothing after unmounting.
  const refreshSoon = useRef<() => void>(() => undefined);
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let running = false;
    let again = false;
    let stopped = false;
    const soon = () => {
      if (stopped) return;
      if (running) {
        again = true;
        return;
      }
      if (timer !== undefined) return;
      timer = setTimeout(() => {
        timer = undefined;
        running = true;
        refresh()
          // UNAUTHENTICATED signs out (api/session.ts); any other failure waits for the next event.
          .catch(() => undefined)
          .finally(() => {
            running = false;
            if (again) {
              again = false;
              soon();
            }
          });
      }, REFRESH_DELAY_MS);
    };
    refreshSoon.current = soon;
    return () => {
      stopped = true;
      clearTimeout(timer);
      refreshSoon.current = () => undefined;
    };
  }, [refresh]);

  useEffect(() => {
    let previous: LiveState = "off";
    return followBalances(subscriptionId, {
      event: (event, replayed) => {
        setPushed((current) => ({ ...current, [event.type]: { balance: event.balance, at: event.lastEntry.createdAt } }));
        // A replayed event is older than this component: its own query has (or will have) held.
        if (!replayed) {
          refreshSoon.current();
          setChanges((n) => n + 1);
        }
      },
      state: (state) => {
        // Back after a loss: whatever changed meanwhile was not pushed, so read it.
        if (previous === "reconnecting" && state === "live") {
          refreshSoon.current();
          setChanges((n) => n + 1);
        }
        previous = state;
        setLive(state);
      },
    });
  }, [subscriptionId]);

  const holding = balances?.some((b) => b.held > 0) ?? false;
  useEffect(() => {
    if (!holding) return;
    const timer = setInterval(() => {
      if (document.visibilityState !== "hidden") refreshSoon.current();
    }, HELD_POLL_MS);
    return () => clearInterval(timer);
  }, [holding]);

  return { balances, live, changes, refresh };
}
