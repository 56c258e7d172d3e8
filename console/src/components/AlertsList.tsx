/** Alerts, newest first, in pages: one subscription's (owners and admins) or all (admins). */
import { useState } from "react";
import { AlertsDocument } from "../generated/graphql";
import { useQuery } from "../api/hooks";
import { ErrorBanner } from "./ErrorBanner";
import { fmtTime, shortId } from "./format";

export function AlertsList({ subscriptionId }: { subscriptionId?: string }) {
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const { data, error, refetch } = useQuery(AlertsDocument, { subscriptionId, first: 20, after: cursors[cursors.length - 1] });
  const page = data?.creditAlerts;
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
            <div>{node.message}</div>
            {node.details ? <code className="small">{JSON.stringify(node.details)}</code> : null}
          </li>
        ))}
      </ul>
      <div className="toolbar">
        <button type="button" disabled={cursors.length <= 1} onClick={() => setCursors(cursors.slice(0, -1))}>
          ← Newer
        </button>
        <button type="button" disabled={!page?.pageInfo.hasNextPage} onClick={() => setCursors([...cursors, page!.pageInfo.endCursor ?? undefined])}>
          Older →
        </button>
      </div>
    </section>
  );
}
