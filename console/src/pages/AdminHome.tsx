/**
 * The admin's start page: search subscriptions (the newest listed on arrival) and open new ones, on
 * one of the server's configured plans (PlanPicker).
 */
import { useCallback, useEffect, useRef, useState, type FormEvent } from "react";
import { CreateSubscriptionDocument, SearchSubscriptionsDocument, type SubscriptionStatus } from "../generated/graphql";
import { useDebounced, useIdempotentAction, useQuery } from "../api/hooks";
import { ErrorBanner } from "../components/ErrorBanner";
import { SubscriptionTable } from "../components/SubscriptionTable";
import { navigate } from "../router";
import { MAX_INT, fmtInt, parseWholeNumber } from "../components/format";
import { PlanPicker } from "./PlanPicker";
import { takeLostFocus } from "../components/focus";

/** What is wrong with a starting amount typed for a credit type (empty is none); undefined when fine. */
function creditsProblem(type: string, text: string): string | undefined {
  if (text.trim() === "") return undefined;
  const n = parseWholeNumber(text);
  return n === undefined || n < 0 ? `${type} credits must be a whole number from 0 to ${fmtInt(MAX_INT)}, e.g. 500, or empty for none.` : undefined;
}

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
        <h1>Subscriptions</h1>
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
          <span className="muted">newest first · page {cursors.length}</span>
          <span className="spacer" />
          <button type="button" disabled={cursors.length <= 1} onClick={() => setCursors(cursors.slice(0, -1))}>
            ← Newer
          </button>
          <button type="button" disabled={!page?.pageInfo.hasNextPage} onClick={() => setCursors([...cursors, page!.pageInfo.endCursor ?? undefined])}>
            Older →
          </button>
        </div>
      </section>
      <CreateSubscription types={types} />
    </div>
  );
}

function CreateSubscription({ types }: { types: readonly string[] }) {
  const [ownerId, setOwnerId] = useState("");
  // Empty until the server's plans are known: PlanPicker then picks the first.
  const [plan, setPlan] = useState("");
  const [credits, setCredits] = useState<Record<string, string>>({});
  const create = useIdempotentAction(CreateSubscriptionDocument);
  const form = useRef<HTMLFormElement>(null);
  const pickPlan = useCallback((name: string) => (setPlan(name), create.reset()), [create.reset]);
  const problems = types.map((type) => ({ type, problem: creditsProblem(type, credits[type] ?? "") })).filter((p) => p.problem);
  // A refusal takes the focus the (disabled while sending) Open button lost on a mouse click.
  useEffect(() => {
    if (create.error) takeLostFocus([...(form.current?.querySelectorAll<HTMLElement>('.error[role="alert"]:not(.field-problem)') ?? [])].pop());
  }, [create.error]);

  async function submit(event: FormEvent) {
    event.preventDefault();
    if (problems.length > 0) {
      // Nothing is sent: the first field in error gets the focus, its message says what to type.
      form.current?.querySelector<HTMLInputElement>('[aria-invalid="true"]')?.focus();
      return;
    }
    const initialCredits = types.map((type) => ({ type, amount: parseWholeNumber(credits[type] ?? "") ?? 0 })).filter((c) => c.amount !== 0);
    const result = await create.run({ input: { ownerId: ownerId.trim(), plan: plan.trim(), initialCredits } });
    if (result) navigate(`/subscriptions/${result.createSubscription.id}`);
  }

  return (
    <form className="panel" onSubmit={(e) => void submit(e)} data-testid="create-subscription" ref={form}>
      <h2>Open a subscription</h2>
      <div className="toolbar">
        <label>
          Owner id
          <input value={ownerId} onChange={(e) => (setOwnerId(e.target.value), create.reset())} required placeholder="user id (token subject)" />
        </label>
        <PlanPicker plan={plan} onChange={pickPlan} />
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
        <button type="submit" className="primary" disabled={create.pending || !ownerId.trim() || !plan.trim()}>
          {create.pending ? "Opening…" : "Open"}
        </button>
      </div>
      {problems.map((p) => (
        <div key={p.type} className="error field-problem" role="alert" id={`create-credits-problem-${p.type}`} data-testid="create-credits-problem">
          {p.problem}
        </div>
      ))}
      <ErrorBanner error={create.error} />
    </form>
  );
}
