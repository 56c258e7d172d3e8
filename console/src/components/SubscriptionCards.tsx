/**
 * A customer's own subscriptions, each with its balances, live (each followed over the console's
 * one graphql-ws connection, see live/useLiveBalances.ts); a card opens the subscription.
 */
import type { SubscriptionSummaryFragment } from "../generated/graphql";
import { serverHasLiveBalances, useLiveBalances } from "../live/useLiveBalances";
import { navigate } from "../router";
import { BalanceCards } from "./BalanceCards";
import { fmtTime } from "./format";
import { UserText, isolated } from "./UserText";

export function SubscriptionCards({ subscriptions, types }: { subscriptions: SubscriptionSummaryFragment[]; types: readonly string[] }) {
  if (subscriptions.length === 0) {
    return <p className="panel muted">You have no subscription yet: ask an admin to open one for your user id.</p>;
  }
  return (
    <div>
      {subscriptions.map((s) => (
        <SubscriptionCard key={s.id} subscription={s} types={types} />
      ))}
    </div>
  );
}

function SubscriptionCard({ subscription: s, types }: { subscription: SubscriptionSummaryFragment; types: readonly string[] }) {
  const { balances, live } = useLiveBalances(s.id, s.balances);
  return (
    <section className="panel clickable" onClick={() => navigate(`/subscriptions/${s.id}`)} data-testid="subscription-row" data-owner={s.ownerId} data-id={s.id}>
      <div className="page-head">
        <div>
          <h2>
            <a href={`/console/subscriptions/${s.id}`} className="mono" onClick={(e) => e.preventDefault()}>
              {s.id}
            </a>
          </h2>
          <span className="muted">
            plan <UserText>{s.plan}</UserText> · opened {fmtTime(s.createdAt)}
          </span>
        </div>
        <span className={`status-chip status-${s.status.toLowerCase()}`} title={s.statusReason ? isolated(s.statusReason) : ""}>
          {s.status}
        </span>
      </div>
      <BalanceCards balances={balances ?? s.balances} types={types} live={serverHasLiveBalances() ? live : undefined} />
      {/* A real link (the card's click is a convenience for the mouse): in the Tab order, announced as a link. */}
      <a
        href={`/console/subscriptions/${s.id}`}
        className="more"
        onClick={(e) => {
          e.preventDefault();
          e.stopPropagation();
          navigate(`/subscriptions/${s.id}`);
        }}
        data-testid="subscription-open"
      >
        Usage, ledger, alerts and cost calculator<span className="visually-hidden"> of subscription {s.id}</span> →
      </a>
    </section>
  );
}
