/**
 * Reads a panel again when the balances it is about change: each live `creditBalanceChanged` event
 * of the given subscriptions (over the console's one connection, ./connection.ts: a subscription
 * already followed by the page is not subscribed to again), and the connection coming back after it
 * was lost (the events of the meantime were missed). Throttled: a read at once when none ran within
 * `everyMs`, else one at the end of that time, so a burst of events reads at most once per `everyMs`,
 * and its last event is always followed by a read.
 *
 * Used by the alerts lists (a crossing's LOW_BALANCE / BALANCE_DEPLETED / BALANCE_RECOVERED alert is
 * written in the same transaction as the change whose event carries `threshold`) and the usage.
 * Nothing happens without live balances on the server: the panels are then read on arrival only.
 */
import { useEffect, useRef } from "react";
import { followBalances, type BalanceEvent, type LiveState } from "./connection";

export function useLiveRefresh(
  subscriptionIds: readonly string[],
  refresh: () => void,
  everyMs: number,
  /** Only events this accepts trigger a read (all by default); a reconnection always does. */
  accept?: (event: BalanceEvent) => boolean,
): void {
  const latest = useRef({ refresh, accept });
  latest.current = { refresh, accept };
  const key = [...new Set(subscriptionIds)].sort().join("\n");

  useEffect(() => {
    if (!key) return;
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let lastRead = 0;
    const soon = () => {
      if (stopped || timer !== undefined) return;
      timer = setTimeout(
        () => {
          timer = undefined;
          if (stopped) return;
          lastRead = Date.now();
          latest.current.refresh();
        },
        Math.max(0, lastRead + everyMs - Date.now()),
      );
    };
    const unfollow = key.split("\n").map((id) => {
      let previous: LiveState = "off";
      return followBalances(id, {
        event: (event, replayed) => {
          // A replayed event is older than this panel: its own first read has it.
          if (!replayed && (latest.current.accept?.(event) ?? true)) soon();
        },
        state: (state) => {
          if (previous === "reconnecting" && state === "live") soon();
          previous = state;
        },
      });
    });
    return () => {
      stopped = true;
      clearTimeout(timer);
      for (const stop of unfollow) stop();
    };
  }, [key, everyMs]);
}
