/**
 * An admin's changes to one subscription: grant, adjust, refund a charge, suspend or reactivate,
 * each with a required reason and an Idempotency-Key tied to the values sent (useIdempotentAction,
 * api/pendingActions.ts), so a double click, a retry after a lost answer, the same values typed
 * again or entered again after leaving the page act once; a submit right after a success with
 * nothing edited (COOL_DOWN_MS) is ignored, and what was sent before the admin left the page and
 * came back is shown (components/PendingActions.tsx). `onChanged` refreshes the balances and lists.
 * Amounts are checked in the form before anything is sent (a whole number, in range), with a
 * message next to the field saying what to type; so are a grant's terms (category, priority 0–100
 * or empty for the API's default, an expiry in the future). An action the server did not answer
 * (or failed) shows a Retry: the same action, with the same key; one still running (409) says so,
 * and is asked again with that key until its outcome comes back. A refund
 * is only sent for a charge of this subscription (refundCheck.ts). A new action clears the last
 * one's messages (`onStarted`), so a success and a new error never show side by side; a submit the
 * form refuses itself (an empty reason) is not an action: its message shows at the field, and the
 * last success message stays. Each tab
 * keeps its own amount and reason (an adjustment's -3 is not carried to the Refund tab, where it
 * would be an error), so a field's problem shows on its own tab only. A refusal takes the focus the
 * submit button lost while it was disabled (a mouse click), so keyboard and screen-reader users
 * land on what went wrong (components/focus.ts).
 *
 * The submit button is disabled only while a request runs: Enter in a field (or the button) with a
 * required field empty (the reason, a refund's entry) says so next to that field (role=alert, the
 * field aria-invalid and described by it) and gives it the focus, as a bad amount does; a disabled
 * button would leave keyboard users with nothing happening, and out of the Tab order. An amount is
 * checked as it is typed, except a sign alone ("-", the start of -25): that one waits for the
 * field to be left, or a submit. A debit picked in the ledger ("refund…") fills the Refund tab and
 * moves the focus to its entry field, so the user goes on from the form that was filled.
 */
import { useCallback, useEffect, useRef, useState, type FormEvent, type ReactNode } from "react";
import {
  AdjustCreditsDocument,
  GrantCreditsDocument,
  RefundChargeDocument,
  SetSubscriptionStatusDocument,
  type GrantCategory,
  type SubscriptionSummaryFragment,
} from "../generated/graphql";
import { ApiError } from "../api/client";
import { isRetryable, stillRunning, useIdempotentAction } from "../api/hooks";
import { ErrorBanner } from "../components/ErrorBanner";
import { PendingActions, StillRunningNote } from "../components/PendingActions";
import { TabPanel, Tabs } from "../components/Tabs";
import { MAX_INT, fmtCreditCount, fmtCredits, fmtInt, fmtTime, parseWholeNumber } from "../components/format";
import { takeLostFocus } from "../components/focus";
import { UserText, isolated } from "../components/UserText";
import { DEFAULT_PRIORITY, GRANT_CATEGORIES, parseExpiry, parsePriority, priorityProblem } from "./grantTerms";
import { findDebit } from "./refundCheck";

type Kind = "grant" | "adjust" | "refund" | "status";
const KINDS: Kind[] = ["grant", "adjust", "refund", "status"];
/** Each tab's own amount (none for status), as first shown. */
const FIRST_AMOUNTS: Record<Kind, string> = { grant: "100", adjust: "", refund: "", status: "" };
const NO_REASONS: Record<Kind, string> = { grant: "", adjust: "", refund: "", status: "" };
/**
 * After a success, a submit of the same form with nothing edited since is ignored this long: it is
 * the second click of a double click at a person's speed, not a new action (the reason was
 * cleared by the success, so it could only replace the success message with "Reason is required").
 */
const COOL_DOWN_MS = 1_500;

/** A sign typed alone: the start of a signed number ("-" before "25"), not a mistake yet. */
const justASign = (text: string) => /^\s*[+-]\s*$/.test(text);

/** What to type in a required field left empty; undefined when it is filled. */
function requiredProblem(field: "entry" | "reason", kind: Kind, text: string): string | undefined {
  if (text.trim() !== "") return undefined;
  if (field === "entry") return "Debit entry id is required: paste the id of the charge's DEBIT entry, or pick “refund…” on it in the ledger.";
  return kind === "status"
    ? "Reason is required: say why (it is kept as the subscription's status reason), e.g. “Unpaid invoice 2041”."
    : "Reason is required: say why (it is kept in the ledger), e.g. “Invoice 2041 paid”.";
}

/** What is wrong with the amount typed for this action, as what to type instead; undefined when it is fine. */
function amountProblem(kind: Kind, text: string): string | undefined {
  const n = parseWholeNumber(text);
  if (kind === "grant" && (n === undefined || n < 1)) {
    return `Credits must be a whole number from 1 to ${fmtInt(MAX_INT)}, e.g. 100.`;
  }
  if (kind === "adjust" && (n === undefined || n === 0)) {
    return `Delta must be a whole number other than 0, at most ${fmtInt(MAX_INT)} either way: positive adds credits, negative (e.g. -25) takes them away.`;
  }
  if (kind === "refund" && text.trim() !== "" && (n === undefined || n < 1)) {
    return "Amount must be a whole number of credits from 1, e.g. 5, or empty to refund all that is left of the charge.";
  }
  return undefined;
}

export function AdminActions({
  subscription,
  types,
  onStarted,
  onChanged,
  refundEntryId,
}: {
  subscription: SubscriptionSummaryFragment;
  types: readonly string[];
  /** An action is about to be sent: the last one's message no longer applies. */
  onStarted?: () => void;
  /**
   * Done: the message to show (the console's words, the admin's reason and the owner id isolated in
   * it); none when an action sent before the admin left the page ended meanwhile (it says so itself).
   */
  onChanged: (message?: ReactNode) => void;
  /** A debit picked in the ledger ("refund…"): the form switches to refunding it. */
  refundEntryId?: { id: string };
}) {
  const [kind, setKind] = useState<Kind>("grant");
  const [type, setType] = useState(types[0] ?? "");
  // Each tab has its own amount and reason: what was typed on one is never checked on another.
  const [amounts, setAmounts] = useState(FIRST_AMOUNTS);
  const [reasons, setReasons] = useState(NO_REASONS);
  const amount = amounts[kind];
  const reason = reasons[kind];
  const setAmount = (value: string) => setAmounts((all) => ({ ...all, [kind]: value }));
  const setReason = (value: string) => setReasons((all) => ({ ...all, [kind]: value }));
  const [entryId, setEntryId] = useState("");
  const [category, setCategory] = useState<GrantCategory>("PAID");
  const [priority, setPriority] = useState(String(DEFAULT_PRIORITY));
  const [expiry, setExpiry] = useState("");
  // The refund's entry is not a charge of this subscription (or could not be looked up).
  const [entryError, setEntryError] = useState<ApiError>();
  const [checking, setChecking] = useState(false);
  const grant = useIdempotentAction(GrantCreditsDocument);
  const adjust = useIdempotentAction(AdjustCreditsDocument);
  const refund = useIdempotentAction(RefundChargeDocument);
  const status = useIdempotentAction(SetSubscriptionStatusDocument);
  const actions = { grant, adjust, refund, status };
  const action = actions[kind];
  const nextStatus = subscription.status === "ACTIVE" ? "SUSPENDED" : "ACTIVE";
  // The amount's problem shows once something is typed (a sign alone: once the field is left), or on a submit.
  const [tried, setTried] = useState(false);
  const [amountLeft, setAmountLeft] = useState(false);
  const amountInput = useRef<HTMLInputElement>(null);
  const problem = kind === "status" ? undefined : amountProblem(kind, amount);
  const typed = amount.trim() !== "" && (amountLeft || !justASign(amount));
  const showProblem = problem !== undefined && (tried || typed);
  // Required fields say they are empty after a submit only (not while the form is being filled in).
  const entryInput = useRef<HTMLInputElement>(null);
  const reasonInput = useRef<HTMLInputElement>(null);
  const entryMissing = tried && kind === "refund" ? requiredProblem("entry", kind, entryId) : undefined;
  const reasonMissing = tried ? requiredProblem("reason", kind, reason) : undefined;
  // A debit picked in the ledger: its entry field takes the focus once the Refund tab shows.
  const focusPickedEntry = useRef(false);
  const priorityInput = useRef<HTMLInputElement>(null);
  const expiryInput = useRef<HTMLInputElement>(null);
  const priorityWrong = kind === "grant" ? priorityProblem(priority) : undefined;
  const expiryWrong = kind === "grant" ? parseExpiry(expiry).problem : undefined;
  const pending = action.pending || checking;
  const busy = useRef(false);
  // When each tab's last action succeeded; an edit of that tab clears it (see COOL_DOWN_MS).
  const succeededAt = useRef<Partial<Record<Kind, number>>>({});
  const form = useRef<HTMLFormElement>(null);
  const failure = kind === "refund" ? (entryError ?? action.error) : action.error;
  useEffect(() => {
    if (failure) takeLostFocus(form.current?.querySelector<HTMLElement>('.error[role="alert"]:not(.field-problem)'));
  }, [failure]);

  useEffect(() => {
    if (!refundEntryId) return;
    setKind("refund");
    setEntryId(refundEntryId.id);
    setAmounts((all) => ({ ...all, refund: "" }));
    setTried(false);
    setEntryError(undefined);
    refund.reset();
    focusPickedEntry.current = true;
  }, [refundEntryId, refund.reset]);
  useEffect(() => {
    if (!focusPickedEntry.current || kind !== "refund") return;
    focusPickedEntry.current = false;
    entryInput.current?.focus();
  });

  /**
   * A changed form clears the last error. Its key is not the form's but the values' (api/pendingActions.ts):
   * values edited back to those of a send without an answer are that send again, with its key.
   */
  const edit = (set: (v: string) => void) => (value: string) => {
    set(value);
    setEntryError(undefined);
    action.reset();
    succeededAt.current[kind] = undefined;
  };

  /** Is the refund's entry a charge of this subscription? Says why not, where the form is. */
  const checkRefund = useCallback(
    async (id: string): Promise<boolean> => {
      setChecking(true);
      try {
        if (await findDebit(subscription.id, id)) return true;
        setEntryError(
          new ApiError(
            `Entry ${isolated(id)} is not a charge (DEBIT entry) of subscription ${subscription.id} (owner ${isolated(subscription.ownerId)}): nothing was refunded. To refund another subscription's charge, open that subscription.`,
            "NOT_THIS_SUBSCRIPTION",
            0,
          ),
        );
        return false;
      } catch (err) {
        setEntryError(err instanceof ApiError ? err : new ApiError(String(err), "CLIENT_ERROR", 0));
        return false;
      } finally {
        setChecking(false);
      }
    },
    [subscription.id, subscription.ownerId],
  );

  async function submit(event: FormEvent) {
    event.preventDefault();
    await sendOnce();
  }

  /**
   * Sends what the form holds. A double click acts once: the refund's check runs before the
   * action's own in-flight guard. Also the Retry of an action the server did not answer: the form is
   * as it was (any edit clears the error, and its Retry), so it is the same values, sent with the
   * same Idempotency-Key (the key goes with the values: edited back to them, it is reused too), and
   * the server acts at most once.
   */
  async function sendOnce() {
    if (busy.current) return;
    // The tail of a double click on a form that just succeeded (nothing edited since): ignored.
    if (Date.now() - (succeededAt.current[kind] ?? 0) < COOL_DOWN_MS) return;
    busy.current = true;
    try {
      await send();
    } finally {
      busy.current = false;
    }
  }
  const retry = () => void sendOnce();

  async function send() {
    setEntryError(undefined);
    const entryEmpty = kind === "refund" ? requiredProblem("entry", kind, entryId) : undefined;
    const reasonEmpty = requiredProblem("reason", kind, reason);
    if (entryEmpty || problem || priorityWrong || expiryWrong || reasonEmpty) {
      // Nothing is sent: the message says what to type, and the first field in error (in the form's order) has the focus.
      setTried(true);
      const first = entryEmpty ? entryInput : problem ? amountInput : priorityWrong ? priorityInput : expiryWrong ? expiryInput : reasonInput;
      first.current?.focus();
      return;
    }
    // Only now is an action started: a form's own complaint (above) never hides the last success message.
    onStarted?.();
    const n = parseWholeNumber(amount) ?? 0;
    const because = (
      <>
        , reason “<UserText>{reason}</UserText>”
      </>
    );
    const scope = subscription.id;
    // The tab this action was sent from (its reason is cleared once done, whatever tab shows then).
    const sent = kind;
    let done: unknown;
    let what: ReactNode = "";
    if (kind === "grant") {
      // An empty priority sends none: the API's default (DEFAULT_PRIORITY) applies.
      const terms = { category, priority: parsePriority(priority), expiresAt: parseExpiry(expiry).expiresAt };
      // The terms are named when they are not the defaults (PAID, priority 50 or none sent, never expiring).
      const named = [
        ...(category !== "PAID" ? [category] : []),
        ...(terms.priority !== undefined && terms.priority !== DEFAULT_PRIORITY ? [`priority ${terms.priority}`] : []),
        // The grants table's format: one format for every date the console prints.
        ...(terms.expiresAt ? [`expiring ${fmtTime(terms.expiresAt)}`] : []),
      ];
      const granted = `${fmtCredits(n, type)}${named.length ? ` (${named.join(", ")})` : ""}`;
      const label = <>the grant of {granted}{because}</>;
      done = await grant.run({ input: { subscriptionId: subscription.id, type, amount: n, reason, ...terms } }, { scope, label });
      what = `Granted ${granted}`;
    }
    if (kind === "adjust") {
      const label = <>the adjustment by {n > 0 ? "+" : ""}{fmtCredits(n, type)}{because}</>;
      done = await adjust.run({ input: { subscriptionId: subscription.id, type, delta: n, reason } }, { scope, label });
      what = `Adjusted by ${n > 0 ? "+" : ""}${fmtCredits(n, type)}`;
    }
    if (kind === "refund") {
      const id = entryId.trim();
      if (!(await checkRefund(id))) return;
      const label = <>the refund of {amount.trim() ? fmtCreditCount(n) : "all that is left"} of charge <UserText>{id}</UserText>{because}</>;
      const result = await refund.run({ input: { entryId: id, amount: amount.trim() ? n : undefined, reason } }, { scope, label });
      done = result;
      if (result) {
        const entry = result.refundCharge;
        what = (
          <>
            Refunded {fmtCredits(Math.abs(entry.amount), entry.type)} to subscription {entry.subscriptionId} (owner <UserText>{subscription.ownerId}</UserText>)
          </>
        );
      }
    }
    if (kind === "status") {
      const label = <>the {nextStatus === "ACTIVE" ? "reactivation" : "suspension"}{because}</>;
      done = await status.run({ id: subscription.id, status: nextStatus, reason }, { scope, label });
      what = nextStatus === "ACTIVE" ? "Reactivated" : "Suspended";
    }
    if (done) {
      succeededAt.current[sent] = Date.now();
      setReasons((all) => ({ ...all, [sent]: "" }));
      setTried(false);
      onChanged(
        <>
          {what}: <UserText>{reason}</UserText>
        </>,
      );
    }
  }

  return (
    // noValidate: the form's own messages say what is missing (the browser's bubble would stop the submit unannounced).
    <form className="panel admin-actions" onSubmit={(e) => void submit(e)} ref={form} data-testid="admin-actions" aria-labelledby="change-heading" noValidate>
      <h2 className="visually-hidden" id="change-heading">
        Change this subscription
      </h2>
      <Tabs
        label="Change"
        idPrefix="change"
        testIdPrefix="action"
        className="small-tabs"
        tabs={KINDS}
        selected={kind}
        onSelect={(k) => (setKind(k), setTried(false), setAmountLeft(false), setEntryError(undefined))}
        title={(k) => (k === "status" ? (subscription.status === "ACTIVE" ? "suspend" : "reactivate") : k)}
      />
      <TabPanel idPrefix="change" selected={kind}>
        <div className="toolbar">
          {kind === "grant" || kind === "adjust" ? (
            <label>
              Type
              <select value={type} onChange={(e) => (edit(setType)(e.target.value), grant.reset(), adjust.reset())} data-testid="action-type">
                {types.map((t) => (
                  <option key={t}>{t}</option>
                ))}
              </select>
            </label>
          ) : null}
          {kind === "refund" ? (
            <label>
              Debit entry id
              <input
                ref={entryInput}
                value={entryId}
                onChange={(e) => edit(setEntryId)(e.target.value)}
                placeholder="ledger entry of the charge"
                size={38}
                required
                aria-invalid={entryMissing ? true : undefined}
                aria-describedby={entryMissing ? "action-entry-problem" : undefined}
                data-testid="action-entry"
              />
            </label>
          ) : null}
          {kind !== "status" ? (
            <label>
              {kind === "adjust" ? "Delta (±)" : kind === "refund" ? "Amount (empty: all)" : "Credits"}
              <input
                ref={amountInput}
                value={amount}
                onChange={(e) => (edit(setAmount)(e.target.value), setAmountLeft(false))}
                onBlur={() => setAmountLeft(true)}
                inputMode="numeric"
                size={8}
                aria-invalid={showProblem || undefined}
                aria-describedby={showProblem ? "action-amount-problem" : undefined}
                data-testid="action-amount"
              />
            </label>
          ) : null}
          {kind === "grant" ? (
            <>
              <label>
                Category
                <select value={category} onChange={(e) => edit((v) => setCategory(v as GrantCategory))(e.target.value)} data-testid="action-category">
                  {GRANT_CATEGORIES.map((c) => (
                    <option key={c}>{c}</option>
                  ))}
                </select>
              </label>
              <label>
                Priority (0–100)
                <input
                  ref={priorityInput}
                  value={priority}
                  onChange={(e) => edit(setPriority)(e.target.value)}
                  inputMode="numeric"
                  size={4}
                  title={`Lower is spent first; empty: the default, ${DEFAULT_PRIORITY}`}
                  placeholder={String(DEFAULT_PRIORITY)}
                  aria-invalid={priorityWrong ? true : undefined}
                  aria-describedby={priorityWrong ? "action-priority-problem" : undefined}
                  data-testid="action-priority"
                />
              </label>
              <label>
                Expires (empty: never)
                <input
                  ref={expiryInput}
                  type="datetime-local"
                  value={expiry}
                  onChange={(e) => edit(setExpiry)(e.target.value)}
                  aria-invalid={tried && expiryWrong ? true : undefined}
                  aria-describedby={tried && expiryWrong ? "action-expiry-problem" : undefined}
                  data-testid="action-expiry"
                />
              </label>
            </>
          ) : null}
          <label className="grow">
            Reason (required)
            <input
              ref={reasonInput}
              value={reason}
              onChange={(e) => edit(setReason)(e.target.value)}
              placeholder="why: kept in the ledger"
              required
              aria-invalid={reasonMissing ? true : undefined}
              aria-describedby={reasonMissing ? "action-reason-problem" : undefined}
              data-testid="action-reason"
            />
          </label>
          <button type="submit" className={kind === "status" && nextStatus === "SUSPENDED" ? "danger" : "primary"} disabled={pending} data-testid="action-submit">
            {checking ? "Checking…" : action.pending ? "Sending…" : kind === "status" ? (nextStatus === "ACTIVE" ? "Reactivate" : "Suspend") : kind[0].toUpperCase() + kind.slice(1)}
          </button>
        </div>
        {entryMissing ? (
          <div className="error field-problem" role="alert" id="action-entry-problem" data-testid="action-entry-problem">
            {entryMissing}
          </div>
        ) : null}
        {showProblem ? (
          <div className="error field-problem" role="alert" id="action-amount-problem" data-testid="action-amount-problem">
            {problem}
          </div>
        ) : null}
        {priorityWrong ? (
          <div className="error field-problem" role="alert" id="action-priority-problem" data-testid="action-priority-problem">
            {priorityWrong}
          </div>
        ) : null}
        {tried && expiryWrong ? (
          <div className="error field-problem" role="alert" id="action-expiry-problem" data-testid="action-expiry-problem">
            {expiryWrong}
          </div>
        ) : null}
        {reasonMissing ? (
          <div className="error field-problem" role="alert" id="action-reason-problem" data-testid="action-reason-problem">
            {reasonMissing}
          </div>
        ) : null}
        {kind === "refund" ? <ErrorBanner error={entryError} onRetry={isRetryable(entryError) ? retry : undefined} /> : null}
        {stillRunning(action.error) ? (
          <StillRunningNote onRetry={action.pending ? undefined : retry} />
        ) : (
          <ErrorBanner error={action.error} onRetry={isRetryable(action.error) ? retry : undefined} />
        )}
      </TabPanel>
      {/* What was sent from this page before the admin left it, and has not been shown ending here. */}
      <PendingActions scope={subscription.id} onEnded={() => onChanged()} />
    </form>
  );
}
