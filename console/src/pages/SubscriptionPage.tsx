/**
 * One subscription: live balances (and the grants they are made of, read again as they change),
 * admin actions, and tabs for usage, ledger, alerts and the cost calculator.
 */
import { useEffect, useRef, useState, type ReactNode } from "react";
import { SubscriptionDetailDocument } from "../generated/graphql";
import { useQuery } from "../api/hooks";
import { ErrorBanner } from "../components/ErrorBanner";
import { BalanceCards } from "../components/BalanceCards";
import { LedgerTable } from "../components/LedgerTable";
import { AlertsList } from "../components/AlertsList";
import { GrantsTable } from "../components/GrantsTable";
import { TabPanel, Tabs } from "../components/Tabs";
import { fmtTime, shortId } from "../components/format";
import { PageHeading } from "../components/PageHeading";
import { UserText } from "../components/UserText";
import { takeLostFocus } from "../components/focus";
import { useLiveBalances } from "../live/useLiveBalances";
import { useLiveGrants } from "../live/useLiveGrants";
import { UsagePanel } from "./UsagePanel";
import { Calculator } from "./Calculator";
import { AdminActions } from "./AdminActions";

type Tab = "usage" | "ledger" | "alerts" | "calculator";
const TABS: Tab[] = ["usage", "ledger", "alerts", "calculator"];
/** The browser tab's title names the tab shown: "Ledger · Subscription 1a2b3c4d". */
const TAB_TITLES: Record<Tab, string> = { usage: "Usage", ledger: "Ledger", alerts: "Alerts", calculator: "Cost calculator" };
/** One empty list while loading, so the grants are not reset at each render. */
const NO_GRANTS: never[] = [];

export function SubscriptionPage({ id, isAdmin, types }: { id: string; isAdmin: boolean; types: readonly string[] }) {
  const { data, error, refetch } = useQuery(SubscriptionDetailDocument, { id });
  const subscription = data?.subscription;
  const { balances, live, changes, refresh } = useLiveBalances(id, subscription?.balances);
  const grants = useLiveGrants(id, subscription?.grants ?? NO_GRANTS, changes);
  const [tab, setTab] = useState<Tab>("usage");
  const [reloadKey, setReloadKey] = useState(0);
  // An action's message: the console's words with the admin's reason (a UserText) in them.
  const [notice, setNotice] = useState<ReactNode>();
  // A fresh object per pick, so picking the same debit twice still fills the form again.
  const [refundPick, setRefundPick] = useState<{ id: string }>();
  // An action's message takes the focus its (now disabled) submit button lost on a mouse click.
  const noticeRef = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (notice) takeLostFocus(noticeRef.current);
  }, [notice]);

  /** An action is done: its message (none for one that ended while the admin was away: it says so itself), and everything read again. */
  async function changed(message?: ReactNode) {
    if (message !== undefined) setNotice(message);
    setReloadKey((k) => k + 1);
    await Promise.all([refresh(), refetch()]);
  }

  const heading = (title: string) => (
    <PageHeading title={title}>
      {/* The id is the address's: whatever was typed there. */}
      Subscription <UserText className="mono">{id}</UserText>
    </PageHeading>
  );
  if (error) {
    return (
      <div>
        <header className="page-head">{heading(`Subscription ${shortId(id)}`)}</header>
        <ErrorBanner error={error} onRetry={() => void refetch()} />
      </div>
    );
  }
  if (!subscription) return <p className="muted">Loading…</p>;
  return (
    <div data-testid="subscription-page">
      <header className="page-head">
        <div>
          {heading(`${TAB_TITLES[tab]} · Subscription ${shortId(subscription.id)}`)}
          <p className="muted">
            owner{" "}
            <strong>
              <UserText testId="owner">{subscription.ownerId}</UserText>
            </strong>{" "}
            · plan <UserText testId="plan">{subscription.plan}</UserText> · opened {fmtTime(subscription.createdAt)}
          </p>
        </div>
        <div className={`status status-${subscription.status.toLowerCase()}`} data-testid="status">
          {subscription.status}
          {subscription.statusReason ? (
            <div className="small">
              “<UserText testId="status-reason">{subscription.statusReason}</UserText>”
            </div>
          ) : null}
        </div>
      </header>
      <h2 className="visually-hidden">Balances</h2>
      {balances ? <BalanceCards balances={balances} types={types} live={live} /> : null}
      <GrantsTable grants={grants.grants} onExpired={grants.expired} />
      {/* Always there, empty until an action succeeds: a screen reader announces text set in a live
          region it already knows, and may miss one inserted with its text. */}
      <div className="notice" role="status" tabIndex={-1} ref={noticeRef} data-testid="notice">
        {notice}
      </div>
      {isAdmin ? <AdminActions subscription={subscription} types={types} onStarted={() => setNotice(undefined)} onChanged={(m) => void changed(m)} refundEntryId={refundPick} /> : null}
      <h2 className="visually-hidden">Details: usage, ledger, alerts and cost calculator</h2>
      <Tabs label="Subscription details" idPrefix="details" testIdPrefix="tab" tabs={TABS} selected={tab} onSelect={setTab} />
      <TabPanel idPrefix="details" selected={tab}>
        {tab === "usage" ? <UsagePanel subscriptionId={id} types={types} reloadKey={reloadKey} /> : null}
        {tab === "ledger" ? (
          <LedgerTable
            subscriptionId={id}
            types={types}
            reloadKey={reloadKey}
            onRefund={isAdmin ? (entryId) => setRefundPick({ id: entryId }) : undefined}
          />
        ) : null}
        {tab === "alerts" ? <AlertsList subscriptionId={id} /> : null}
        {tab === "calculator" ? <Calculator subscriptionId={id} /> : null}
      </TabPanel>
    </div>
  );
}
