/**
 * Live balances of one subscription, wherever they are shown (the customer's list of
 * subscriptions, a subscription's page).
 *
 * - Pushed over the console's one graphql-ws connection (./connection.ts: `creditBalanceChanged`),
 *   when the server's schema has it.
 * - Each push also reads the subscription's balances again (`Balances`, throttled: at once when
 *   none started within REFRESH_EVERY_MS, else at the end of that time, one read at a time, so a
 *   burst of events reads at its start and once more at its end), since an event carries the
 *   balance but not `held` (credits taken by calls still running), which a hold or a settlement
 *   changes with it. The pushed balance shows with that read's answer (in the same render), so a
 *   balance is never shown next to a `held` of another moment (a settled balance beside the hold
 *   it no longer has); if the read fails, it shows all the same.
 * - While credits are held, read again every HELD_POLL_MS as well: a call that costs exactly what
 *   it held settles without a ledger entry, so without an event.
 * - Read again after each of the console's own mutations anyway (`refresh`), so a grant shows at
 *   once even before its event arrives.
 * - Read again when the connection is back after it was lost ("reconnecting" to "live"): the events
 *   of the meantime were missed. Until that read has answered, `live` stays "reconnecting" (the
 *   figures on screen are still the old ones: they must not look live); a failed read is tried
 *   again after CATCH_UP_RETRY_MS. `changes` counts pushed events and reconnections, for what else
 *   on the page is made of the balances (the grants) to be read again too.
 */
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import type { BalanceFragment } from "../generated/graphql";
import { BalancesDocument } from "../generated/graphql";
import { request } from "../api/client";
import { followBalances, type LiveState } from "./connection";

export { serverHasLiveBalances, type LiveState } from "./connection";

/** At most one read of the balances starts this often (a burst of events, or events and a poll). */
const REFRESH_EVERY_MS = 200;
/** While credits are held, the balances are read again this often. */
const HELD_POLL_MS = 3_000;
/** After a reconnection, a failed read of the balances (still "reconnecting") is tried again after this. */
const CATCH_UP_RETRY_MS = 2_000;

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

/** A pushed event waiting for a read of the balances that started after it (`after`: the reads started before it). */
interface Waiting {
  type: string;
  balance: number;
  at: string;
  after: number;
}

export function useLiveBalances(subscriptionId: string, initial: BalanceFragment[] | undefined): LiveBalances {
  const [snapshot, setSnapshot] = useState(initial);
  const [pushed, setPushed] = useState<Pushed>({});
  const [state, setState] = useState<LiveState>("off");
  // Back after a loss, and the balances not read again yet: shown as still reconnecting.
  const [catchingUp, setCatchingUp] = useState(false);
  const [changes, setChanges] = useState(0);
  useEffect(() => setSnapshot(initial), [initial]);
  const balances = useMemo(() => merge(snapshot, pushed), [snapshot, pushed]);
  const live: LiveState = state === "live" && catchingUp ? "reconnecting" : state;

  // Answers can come back out of order (a mutation's refresh and an event's): the latest read wins.
  // Reads are numbered as they start: `latest` is the number of the last one started.
  const latest = useRef(0);
  // Pushed events not shown yet: each waits for the answer of a read started after it.
  const waiting = useRef<Waiting[]>([]);
  // After a reconnection: the first read started after this number ends the catching up.
  const catchUpAfter = useRef<number | undefined>(undefined);

  /** What the latest read (number `ticket`) brings: its balances, with the events it covers, in one render. */
  const settle = useCallback((ticket: number, read: BalanceFragment[] | undefined) => {
    if (read) setSnapshot(read);
    const ready = waiting.current.filter((w) => w.after < ticket);
    if (ready.length > 0) {
      waiting.current = waiting.current.filter((w) => w.after >= ticket);
      setPushed((current) => {
        const next = { ...current };
        for (const w of ready) next[w.type] = { balance: w.balance, at: w.at };
        return next;
      });
    }
    if (read && catchUpAfter.current !== undefined && catchUpAfter.current < ticket) {
      catchUpAfter.current = undefined;
      setCatchingUp(false);
    }
  }, []);

  const refresh = useCallback(async () => {
    const ticket = ++latest.current;
    let data;
    try {
      data = await request(BalancesDocument, { id: subscriptionId });
    } catch (err) {
      // Failed: the events that waited for it show all the same (their balances are newer than the screen's).
      if (ticket === latest.current) settle(ticket, undefined);
      throw err;
    }
    if (ticket === latest.current) settle(ticket, data.subscription.balances);
  }, [subscriptionId, settle]);

  // One read at a time, at most one every REFRESH_EVERY_MS, coalescing what asks for one meanwhile
  // (a read at once when none started lately, so a pushed balance is not kept waiting); nothing
  // after unmounting.
  const refreshSoon = useRef<() => void>(() => undefined);
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let retry: ReturnType<typeof setTimeout> | undefined;
    let running = false;
    let again = false;
    let stopped = false;
    let lastStart = 0;
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
        lastStart = Date.now();
        refresh()
          // UNAUTHENTICATED signs out (api/session.ts); any other failure waits for the next event,
          // or, while catching up after a reconnection, is tried again a little later.
          .catch(() => {
            if (catchUpAfter.current !== undefined && !stopped) {
              clearTimeout(retry);
              retry = setTimeout(soon, CATCH_UP_RETRY_MS);
            }
          })
          .finally(() => {
            running = false;
            if (again) {
              again = false;
              soon();
            }
          });
      }, Math.max(0, lastStart + REFRESH_EVERY_MS - Date.now()));
    };
    refreshSoon.current = soon;
    return () => {
      stopped = true;
      clearTimeout(timer);
      clearTimeout(retry);
      refreshSoon.current = () => undefined;
    };
  }, [refresh]);

  useEffect(() => {
    let previous: LiveState = "off";
    return followBalances(subscriptionId, {
      event: (event, replayed) => {
        const change = { balance: event.balance, at: event.lastEntry.createdAt };
        // A replayed event is older than this component: its own query has (or will have) held.
        if (replayed) {
          setPushed((current) => ({ ...current, [event.type]: change }));
          return;
        }
        // Shown with the read it asks for, which brings `held` of the same moment.
        waiting.current.push({ type: event.type, ...change, after: latest.current });
        refreshSoon.current();
        setChanges((n) => n + 1);
      },
      state: (next) => {
        // Back after a loss: whatever changed meanwhile was not pushed, so read it, and say
        // "reconnecting" until that read has answered.
        if (previous === "reconnecting" && next === "live") {
          catchUpAfter.current = latest.current;
          setCatchingUp(true);
          refreshSoon.current();
          setChanges((n) => n + 1);
        }
        // Lost again before it caught up: the next time it is back starts over.
        if (next !== "live" && catchUpAfter.current !== undefined) {
          catchUpAfter.current = undefined;
          setCatchingUp(false);
        }
        previous = next;
        setState(next);
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
