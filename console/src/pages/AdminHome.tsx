/**
 * The admin's start page: search subscriptions (the newest listed on arrival) and open new ones, on
 * one of the server's configured plans (PlanPicker). How many subscriptions the search shows is a
 * polite live region, so a screen reader hears what typing in the search found. The Open button is
 * disabled only while sending: Open (or Enter) with the owner id or the plan's name empty says so
 * next to the field, which gets the focus.
 */
import { useCallback, useEffect, useRef, useState, type FormEvent } from "react";
import { CreateSubscriptionDocument, SearchSubscriptionsDocument, type SubscriptionStatus } from "../generated/graphql";
import { isRetryable, stillRunning, useDebounced, useIdempotentAction, useQuery } from "../api/hooks";
import { ErrorBanner } from "../components/ErrorBanner";
import { PendingActions, StillRunningNote } from "../components/PendingActions";
import { UserText } from "../components/UserText";
import { SubscriptionTable } from "../components/SubscriptionTable";
import { navigate } from "../router";
import { MAX_INT, fmtInt, parseWholeNumber } from "../components/format";
import { PlanPicker } from "./PlanPicker";
import { takeLostFocus } from "../components/focus";
import { Pager } from "../components/Pager";
import { PageHeading } from "../components/PageHeading";

/** What is wrong with a starting amount typed for a credit type (empty is none); undefined when fine. */
function creditsProblem(type: string, text: string): string | undefined {
  if (text.trim() === "") return undefined;
  const n = parseWholeNumber(text);
  return n === undefined || n < 0 ? `${type} credits must be a whole number from 0 to ${fmtInt(MAX_INT)}, e.g. 500, or empty for none.` : undefined;
}

/** "3 subscriptions", "15 subscriptions, more on older pages", "No subscriptions found". */
function countText(shown: number, more: boolean): string {
  if (shown === 0) return "No subscriptions found";
  return `${shown} subscription${shown === 1 ? "" : "s"}${more ? ", more on older pages" : ""}`;
}

/** Where an Open sent before the admin left the page is shown (api/pendingActions.ts). */
const NEW_SUBSCRIPTION = "new-subscription";

/** What to type in a required field of the new subscription left empty. */
const OWNER_MISSING = "Owner id is required: the user id (the token's subject) the subscription is for, e.g. customer-gamma.";
const PLAN_MISSING = "Plan name is required: type the plan's name, or pick one of the server's plans.";

export function AdminHome({ types }: { types: readonly string[] }) {
  const [search, setSearch] = useState("");
  const [status, setStatus] = useState("");
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const searchText = useDebounced(search.trim());
  const filter = { ...(searchText ? { search: searchText } : {}), ...(status ? { status: status as SubscriptionStatus } : {}) };
  const { data, error, refetch } = useQuery(SearchSubscriptionsDocument, { filter, first: 15, after: cursors[cursors.length - 1] });
  const page = data?.subscriptions;

  return (
    <div>
      <header className="page-head">
        <PageHeading title="Subscriptions" />
      </header>
      <section className="panel">
        <div className="toolbar">
          <label className="grow">
            Find by owner id or subscription id (prefix)
            <input
              value={search}
              onChange={(e) => (setSearch(e.target.value), setCursors([undefined]))}
              placeholder="e.g. demo-user or 7c1f…"
              data-testid="search"
              autoFocus
            />
          </label>
          <label>
            Status
            <select value={status} onChange={(e) => (setStatus(e.target.value), setCursors([undefined]))}>
              <option value="">any</option>
              <option>ACTIVE</option>
              <option>SUSPENDED</option>
              <option>CANCELLED</option>
            </select>
          </label>
        </div>
        <ErrorBanner error={error} onRetry={() => void refetch()} />
        {page ? <SubscriptionTable subscriptions={page.edges.map((e) => e.node)} types={types} /> : null}
        <div className="toolbar">
          <span className="muted" role="status" data-testid="search-count">
            {page ? `${countText(page.edges.length, page.pageInfo.hasNextPage)} · ` : ""}newest first · page {cursors.length}
          </span>
          <span className="spacer" />
          <Pager
            page={cursors.length}
            hasOlder={!!page?.pageInfo.hasNextPage}
            onNewer={() => setCursors(cursors.slice(0, -1))}
            onOlder={() => setCursors([...cursors, page!.pageInfo.endCursor ?? undefined])}
          />
        </div>
      </section>
      {/* A subscription may have been opened without its answer arriving: the list is read again then. */}
      <CreateSubscription types={types} onMaybeOpened={() => void refetch()} />
    </div>
  );
}

/**
 * The form to open a subscription. Its answer lost (or a 5xx): a Retry sends the same values with the
 * same Idempotency-Key (api/hooks.ts), and `onMaybeOpened` reads the list again, where one that was
 * opened shows; so after each Retry that is not answered either.
 */
function CreateSubscription({ types, onMaybeOpened }: { types: readonly string[]; onMaybeOpened: () => void }) {
  const [ownerId, setOwnerId] = useState("");
  // Empty until the server's plans are known: PlanPicker then picks the first.
  const [plan, setPlan] = useState("");
  const [credits, setCredits] = useState<Record<string, string>>({});
  const create = useIdempotentAction(CreateSubscriptionDocument);
  const form = useRef<HTMLFormElement>(null);
  const ownerInput = useRef<HTMLInputElement>(null);
  const pickPlan = useCallback((name: string) => (setPlan(name), create.reset()), [create.reset]);
  const problems = types.map((type) => ({ type, problem: creditsProblem(type, credits[type] ?? "") })).filter((p) => p.problem);
  // Required fields say they are empty after a submit only (not while the form is being filled in).
  const [tried, setTried] = useState(false);
  const ownerMissing = tried && !ownerId.trim();
  const planMissing = tried && !plan.trim();
  // A refusal takes the focus the (disabled while sending) Open button lost on a mouse click.
  useEffect(() => {
    if (create.error) takeLostFocus([...(form.current?.querySelectorAll<HTMLElement>('.error[role="alert"]:not(.field-problem)') ?? [])].pop());
  }, [create.error]);

  async function submit(event: FormEvent) {
    event.preventDefault();
    await send();
  }

  async function send() {
    if (problems.length > 0 || !ownerId.trim() || !plan.trim()) {
      // Nothing is sent: the first field in error gets the focus, its message says what to type.
      setTried(true);
      if (!ownerId.trim()) ownerInput.current?.focus();
      else if (!plan.trim()) form.current?.querySelector<HTMLElement>('[data-testid="create-plan-name"], [data-testid="create-plan"]')?.focus();
      else form.current?.querySelector<HTMLInputElement>('[aria-invalid="true"]')?.focus();
      return;
    }
    const initialCredits = types.map((type) => ({ type, amount: parseWholeNumber(credits[type] ?? "") ?? 0 })).filter((c) => c.amount !== 0);
    const label = (
      <>
        opening a subscription for owner <UserText>{ownerId.trim()}</UserText> on plan <UserText>{plan.trim()}</UserText>
      </>
    );
    const result = await create.run({ input: { ownerId: ownerId.trim(), plan: plan.trim(), initialCredits } }, { scope: NEW_SUBSCRIPTION, label });
    if (result) {
      setTried(false);
      navigate(`/subscriptions/${result.createSubscription.id}`);
    } else {
      onMaybeOpened();
    }
  }
  const retry = () => void send();

  return (
    // noValidate: the form's own messages say what is missing (the browser's bubble would stop the submit unannounced).
    <form className="panel" onSubmit={(e) => void submit(e)} data-testid="create-subscription" ref={form} noValidate>
      <h2>Open a subscription</h2>
      <div className="toolbar">
        <label>
          Owner id
          <input
            ref={ownerInput}
            value={ownerId}
            onChange={(e) => (setOwnerId(e.target.value), create.reset())}
            required
            placeholder="user id (token subject)"
            aria-invalid={ownerMissing || undefined}
            aria-describedby={ownerMissing ? "create-owner-problem" : undefined}
            data-testid="create-owner"
          />
        </label>
        <PlanPicker plan={plan} onChange={pickPlan} problemId={planMissing ? "create-plan-problem" : undefined} />
        {types.map((t) => (
          <label key={t}>
            {t} credits
            <input
              value={credits[t] ?? ""}
              onChange={(e) => (setCredits({ ...credits, [t]: e.target.value }), create.reset())}
              inputMode="numeric"
              size={6}
              placeholder="0"
              aria-invalid={creditsProblem(t, credits[t] ?? "") ? true : undefined}
              aria-describedby={creditsProblem(t, credits[t] ?? "") ? `create-credits-problem-${t}` : undefined}
              data-testid={`create-credits-${t}`}
            />
          </label>
        ))}
        <button type="submit" className="primary" disabled={create.pending}>
          {create.pending ? "Opening…" : "Open"}
        </button>
      </div>
      {ownerMissing ? (
        <div className="error field-problem" role="alert" id="create-owner-problem" data-testid="create-owner-problem">
          {OWNER_MISSING}
        </div>
      ) : null}
      {planMissing ? (
        <div className="error field-problem" role="alert" id="create-plan-problem" data-testid="create-plan-problem">
          {PLAN_MISSING}
        </div>
      ) : null}
      {problems.map((p) => (
        <div key={p.type} className="error field-problem" role="alert" id={`create-credits-problem-${p.type}`} data-testid="create-credits-problem">
          {p.problem}
        </div>
      ))}
      {stillRunning(create.error) ? (
        <StillRunningNote onRetry={create.pending ? undefined : retry} />
      ) : (
        <ErrorBanner error={create.error} onRetry={isRetryable(create.error) ? retry : undefined} />
      )}
      {/* Opened from this page before the admin left it, and not shown ending here. */}
      <PendingActions scope={NEW_SUBSCRIPTION} onEnded={onMaybeOpened} />
    </form>
  );
}
