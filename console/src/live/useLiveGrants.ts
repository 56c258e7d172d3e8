/**
 * A subscription's grants, kept in step with its live balances: each balance change pushed (a charge,
 * an expiry, a grant made elsewhere) or a reconnection (`changes` from useLiveBalances) reads the
 * grants again, at most once every GRANTS_REFRESH_MS (a burst of events reads once, at its end too),
 * so the grants panel never contradicts the balance cards. `expired()` reads them again when a shown
 * grant's expiry has passed (the server stops listing it then).
 *
 * A failed read keeps the grants shown (the next change reads again): it must not replace the page
 * with an error, as the page's own query would.
 */
import { useCallback, useEffect, useRef, useState } from "react";
import { SubscriptionGrantsDocument, type GrantFragment } from "../generated/graphql";
import { request } from "../api/client";

/** At most one read of the grants this often. */
export const GRANTS_REFRESH_MS = 1_000;

export interface LiveGrants {
  grants: GrantFragment[];
  /** A shown grant's expiry has passed: read them again. */
  expired: () => void;
}

export function useLiveGrants(subscriptionId: string, initial: GrantFragment[], changes: number): LiveGrants {
  const [grants, setGrants] = useState(initial);
  useEffect(() => setGrants(initial), [initial]);

  // Throttled: a read now if none ran within GRANTS_REFRESH_MS, else one at the end of that time.
  const lastRead = useRef(0);
  const timer = useRef<ReturnType<typeof setTimeout>>(undefined);
  const latest = useRef(0);
  const read = useCallback(() => {
    if (timer.current !== undefined) return;
    const wait = Math.max(0, lastRead.current + GRANTS_REFRESH_MS - Date.now());
    timer.current = setTimeout(() => {
      timer.current = undefined;
      lastRead.current = Date.now();
      const ticket = ++latest.current;
      request(SubscriptionGrantsDocument, { id: subscriptionId })
        .then((data) => {
          if (ticket === latest.current) setGrants(data.subscription.grants);
        })
        // UNAUTHENTICATED signs out (api/session.ts); anything else waits for the next change.
        .catch(() => undefined);
    }, wait);
  }, [subscriptionId]);
  useEffect(() => () => clearTimeout(timer.current), []);

  useEffect(() => {
    if (changes > 0) read();
  }, [changes, read]);

  return { grants, expired: read };
}
