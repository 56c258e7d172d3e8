/**
 * Alerts, newest first, in pages: one subscription's (owners and admins) or all (admins).
 *
 * Live: the list is read again (at most once every ALERTS_REFRESH_MS) on each live balance event of
 * the subscription shown, or, on the admin's page of every alert, of the subscriptions whose alerts
 * are listed (up to MAX_FOLLOWED of them), so a balance crossing its threshold (its event carries
 * `threshold`, and its alert is written with the change) shows its LOW_BALANCE, BALANCE_DEPLETED or
 * BALANCE_RECOVERED alert without a reload. Alerts of subscriptions not listed there are found by a
 * read every ALERTS_POLL_MS while the newest page is on screen.
 */
import { useEffect, useMemo, useState } from "react";
import { AlertsDocument } from "../generated/graphql";
import { useQuery } from "../api/hooks";
import { useLiveRefresh } from "../live/useLiveRefresh";
import { ErrorBanner } from "./ErrorBanner";
import { fmtTime, shortId } from "./format";
import { Pager } from "./Pager";
import { UserText } from "./UserText";

/** At most one read of the alerts this often, however many events arrive. */
export const ALERTS_REFRESH_MS = 1_000;
/** The admin's page of every alert follows the live balances of at most this many listed subscriptions. */
const MAX_FOLLOWED = 10;
/** The admin's page of every alert (its newest page) is read again this often anyway. */
const ALERTS_POLL_MS = 30_000;

export function AlertsList({ subscriptionId }: { subscriptionId?: string }) {
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const { data, error, refetch } = useQuery(AlertsDocument, { subscriptionId, first: 20, after: cursors[cursors.length - 1] });
  const page = data?.creditAlerts;
  const newest = cursors.length === 1;
  const followed = useMemo(() => {
    if (subscriptionId) return [subscriptionId];
    // Every alert: new ones show on the newest page, so older pages follow nothing.
    if (!newest) return [];
    const listed = page?.edges.map((e) => e.node.subscriptionId).filter((id): id is string => !!id) ?? [];
    return [...new Set(listed)].slice(0, MAX_FOLLOWED);
  }, [subscriptionId, newest, page]);
  useLiveRefresh(followed, () => void refetch(), ALERTS_REFRESH_MS);
  useEffect(() => {
    if (subscriptionId || !newest) return;
    const timer = setInterval(() => {
      if (document.visibilityState !== "hidden") void refetch();
    }, ALERTS_POLL_MS);
    return () => clearInterval(timer);
  }, [subscriptionId, newest, refetch]);
  return (
    <section className="panel" data-testid="alerts">
      <ErrorBanner error={error} onRetry={() => void refetch()} />
      {page && page.edges.length === 0 ? <p className="muted">No alerts{subscriptionId ? " for this subscription" : ""}.</p> : null}
      <ul className="alerts">
        {page?.edges.map(({ node }) => (
          <li key={node.id} data-kind={node.kind}>
            <span className={`kind alert-${node.kind.toLowerCase()}`}>{node.kind.replace(/_/g, " ")}</span>
            <span className="muted small">{fmtTime(node.createdAt)}</span>
            {node.subscriptionId && !subscriptionId ? <span className="mono small"> {shortId(node.subscriptionId)}</span> : null}
            {/* The server's words, quoting owner ids, plans or reasons as they were typed. */}
            <div>
              <UserText>{node.message}</UserText>
            </div>
            {node.details ? <code className="small">{JSON.stringify(node.details)}</code> : null}
          </li>
        ))}
      </ul>
      <div className="toolbar">
        <Pager
          page={cursors.length}
          hasOlder={!!page?.pageInfo.hasNextPage}
          onNewer={() => setCursors(cursors.slice(0, -1))}
          onOlder={() => setCursors([...cursors, page!.pageInfo.endCursor ?? undefined])}
        />
      </div>
    </section>
  );
}
