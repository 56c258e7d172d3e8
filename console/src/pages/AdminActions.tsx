/**
 * An admin's changes to one subscription: grant, adjust, refund a charge, suspend or reactivate,
 * each with a required reason and its own Idempotency-Key (see useIdempotentAction), so a double
 * click or a retry after a lost answer acts once. `onChanged` refreshes the balances and lists.
 * Amounts are checked in the form before anything is sent (a whole number, in range), with a
 * message next to the field saying what to type.
 */
import { useEffect, useRef, useState, type FormEvent } from "react";
import {
  AdjustCreditsDocument,
  GrantCreditsDocument,
  RefundChargeDocument,
  SetSubscriptionStatusDocument,
  type SubscriptionSummaryFragment,
} from "../generated/graphql";
import { useIdempotentAction } from "../api/hooks";
import { ErrorBanner } from "../components/ErrorBanner";
import { TabPanel, Tabs } from "../components/Tabs";
import { MAX_INT, fmtInt, parseWholeNumber } from "../components/format";

type Kind = "grant" | "adjust" | "refund" | "status";
const KINDS: Kind[] = ["grant", "adjust", "refund", "status"];

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
  onChanged,
  refundEntryId,
}: {
  subscription: SubscriptionSummaryFragment;
  types: readonly string[];
  onChanged: (message: string) => void;
  /** A debit picked in the ledger ("refund…"): the form switches to refunding it. */
  refundEntryId?: { id: string };
}) {
  const [kind, setKind] = useState<Kind>("grant");
  const [type, setType] = useState(types[0] ?? "");
  const [amount, setAmount] = useState("100");
  const [entryId, setEntryId] = useState("");
  const [reason, setReason] = useState("");
  const grant = useIdempotentAction(GrantCreditsDocument);
  const adjust = useIdempotentAction(AdjustCreditsDocument);
  const refund = useIdempotentAction(RefundChargeDocument);
  const status = useIdempotentAction(SetSubscriptionStatusDocument);
  const actions = { grant, adjust, refund, status };
  const action = actions[kind];
  const nextStatus = subscription.status === "ACTIVE" ? "SUSPENDED" : "ACTIVE";
  // The amount's problem shows once something is typed, or on a submit.
  const [tried, setTried] = useState(false);
  const amountInput = useRef<HTMLInputElement>(null);
  const problem = kind === "status" ? undefined : amountProblem(kind, amount);
  const showProblem = problem !== undefined && (tried || amount.trim() !== "");

  useEffect(() => {
    if (!refundEntryId) return;
    setKind("refund");
    setEntryId(refundEntryId.id);
    setAmount("");
    setTried(false);
    refund.reset();
  }, [refundEntryId, refund.reset]);

  /** A changed form is a new intended action: its first send gets a new key. */
  const edit = (set: (v: string) => void) => (value: string) => {
    set(value);
    action.reset();
  };

  async function submit(event: FormEvent) {
    event.preventDefault();
    if (problem) {
      // Nothing is sent: the message says what to type, and the field has the focus.
      setTried(true);
      amountInput.current?.focus();
      return;
    }
    const n = parseWholeNumber(amount) ?? 0;
    let done: unknown;
    if (kind === "grant") done = await grant.run({ input: { subscriptionId: subscription.id, type, amount: n, reason } });
    if (kind === "adjust") done = await adjust.run({ input: { subscriptionId: subscription.id, type, delta: n, reason } });
    if (kind === "refund") done = await refund.run({ input: { entryId: entryId.trim(), amount: amount.trim() ? n : undefined, reason } });
    if (kind === "status") done = await status.run({ id: subscription.id, status: nextStatus, reason });
    if (done) {
      const what = {
        grant: `Granted ${n} ${type}`,
        adjust: `Adjusted ${type} by ${n}`,
        refund: "Refunded the charge",
        status: nextStatus === "ACTIVE" ? "Reactivated" : "Suspended",
      }[kind];
      setReason("");
      setTried(false);
      onChanged(`${what}: ${reason}`);
    }
  }

  return (
    <form className="panel admin-actions" onSubmit={(e) => void submit(e)} data-testid="admin-actions" aria-label="Change this subscription">
      <Tabs
        label="Change"
        idPrefix="change"
        testIdPrefix="action"
        className="small-tabs"
        tabs={KINDS}
        selected={kind}
        onSelect={(k) => (setKind(k), setTried(false))}
        title={(k) => (k === "status" ? (subscription.status === "ACTIVE" ? "suspend" : "reactivate") : k)}
      />
      <TabPanel idPrefix="change" selected={kind}>
        <div className="toolbar">
          {kind === "grant" || kind === "adjust" ? (
            <label>
              Type
              <select value={type} onChange={(e) => edit(setType)(e.target.value)} data-testid="action-type">
                {types.map((t) => (
                  <option key={t}>{t}</option>
                ))}
              </select>
            </label>
          ) : null}
          {kind === "refund" ? (
            <label>
              Debit entry id
              <input value={entryId} onChange={(e) => edit(setEntryId)(e.target.value)} placeholder="ledger entry of the charge" size={38} />
            </label>
          ) : null}
          {kind !== "status" ? (
            <label>
              {kind === "adjust" ? "Delta (±)" : kind === "refund" ? "Amount (empty: all)" : "Credits"}
              <input
                ref={amountInput}
                value={amount}
                onChange={(e) => edit(setAmount)(e.target.value)}
                inputMode="numeric"
                size={8}
                aria-invalid={showProblem || undefined}
                aria-describedby={showProblem ? "action-amount-problem" : undefined}
                data-testid="action-amount"
              />
            </label>
          ) : null}
          <label className="grow">
            Reason (required)
            <input value={reason} onChange={(e) => edit(setReason)(e.target.value)} placeholder="why: kept in the ledger" required data-testid="action-reason" />
          </label>
          <button type="submit" className={kind === "status" && nextStatus === "SUSPENDED" ? "danger" : "primary"} disabled={action.pending || !reason.trim()} data-testid="action-submit">
            {action.pending ? "Sending…" : kind === "status" ? (nextStatus === "ACTIVE" ? "Reactivate" : "Suspend") : kind[0].toUpperCase() + kind.slice(1)}
          </button>
        </div>
        {showProblem ? (
          <div className="error field-problem" role="alert" id="action-amount-problem" data-testid="action-amount-problem">
            {problem}
          </div>
        ) : null}
        <ErrorBanner error={action.error} />
      </TabPanel>
    </form>
  );
}
