/**
 * An admin's changes to one subscription: grant, adjust, refund a charge, suspend or reactivate,
 * each with a required reason and its own Idempotency-Key (see useIdempotentAction), so a double
 * click or a retry after a lost answer acts once. `onChanged` refreshes the balances and lists.
 */
import { useEffect, useState, type FormEvent } from "react";
import {
  AdjustCreditsDocument,
  GrantCreditsDocument,
  RefundChargeDocument,
  SetSubscriptionStatusDocument,
  type SubscriptionSummaryFragment,
} from "../generated/graphql";
import { useIdempotentAction } from "../api/hooks";
import { ErrorBanner } from "../components/ErrorBanner";

type Kind = "grant" | "adjust" | "refund" | "status";

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

  useEffect(() => {
    if (!refundEntryId) return;
    setKind("refund");
    setEntryId(refundEntryId.id);
    setAmount("");
    refund.reset();
  }, [refundEntryId, refund.reset]);

  /** A changed form is a new intended action: its first send gets a new key. */
  const edit = (set: (v: string) => void) => (value: string) => {
    set(value);
    action.reset();
  };

  async function submit(event: FormEvent) {
    event.preventDefault();
    const n = Number(amount);
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
      onChanged(`${what}: ${reason}`);
    }
  }

  return (
    <form className="panel admin-actions" onSubmit={(e) => void submit(e)} data-testid="admin-actions">
      <div className="tabs small-tabs">
        {(["grant", "adjust", "refund", "status"] as Kind[]).map((k) => (
          <button type="button" key={k} className={k === kind ? "active" : ""} onClick={() => setKind(k)} data-testid={`action-${k}`}>
            {k === "status" ? (subscription.status === "ACTIVE" ? "suspend" : "reactivate") : k}
          </button>
        ))}
      </div>
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
            <input value={amount} onChange={(e) => edit(setAmount)(e.target.value)} inputMode="numeric" size={8} data-testid="action-amount" />
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
      <ErrorBanner error={action.error} />
    </form>
  );
}
