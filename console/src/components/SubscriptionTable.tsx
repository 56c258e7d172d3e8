/** Subscriptions as rows with their balances; a row opens the subscription. */
import type { SubscriptionSummaryFragment } from "../generated/graphql";
import { navigate } from "../router";
import { fmtInt, fmtTime } from "./format";
import { UserText, isolated } from "./UserText";

export function SubscriptionTable({ subscriptions, types }: { subscriptions: SubscriptionSummaryFragment[]; types: readonly string[] }) {
  return (
    <div className="table-scroll" tabIndex={0} role="region" aria-label="Subscriptions">
      <table data-testid="subscriptions">
        <thead>
          <tr>
            <th>Subscription</th>
            <th>Owner</th>
            <th>Plan</th>
            <th>Status</th>
            {types.map((t) => (
              <th key={t} className="num">
                {t}
              </th>
            ))}
            <th>Opened</th>
          </tr>
        </thead>
        <tbody>
          {subscriptions.map((s) => (
            <tr key={s.id} className="clickable" onClick={() => navigate(`/subscriptions/${s.id}`)} data-testid="subscription-row" data-owner={s.ownerId}>
              <td>
                <a href={`/console/subscriptions/${s.id}`} className="mono" onClick={(e) => e.preventDefault()}>
                  {s.id.slice(0, 8)}…
                </a>
              </td>
              <td>
                <UserText>{s.ownerId}</UserText>
              </td>
              <td>
                <UserText>{s.plan}</UserText>
              </td>
              <td>
                <span className={`status-chip status-${s.status.toLowerCase()}`} title={s.statusReason ? isolated(s.statusReason) : ""}>
                  {s.status}
                </span>
              </td>
              {types.map((t) => (
                <td key={t} className="num">
                  {fmtInt(s.balances.find((b) => b.type === t)?.balance ?? 0)}
                </td>
              ))}
              <td className="small nowrap">{fmtTime(s.createdAt)}</td>
            </tr>
          ))}
          {subscriptions.length === 0 ? (
            <tr>
              <td colSpan={5 + types.length} className="muted">
                No subscriptions.
              </td>
            </tr>
          ) : null}
        </tbody>
      </table>
    </div>
  );
}
