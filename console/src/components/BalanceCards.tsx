/**
 * A subscription's balances, one card per credit type. `held` (issue 13) and grants with their
 * expiry (issue 17) are shown here when the Balance fragment carries them: see Extra below.
 */
import type { BalanceFragment } from "../generated/graphql";
import { colourOf, fmtInt, fmtTime } from "./format";

/** Figures a later schema adds to a balance (CreditBalance.held, lowBalanceThreshold). */
type Extra = { held?: number | null; lowBalanceThreshold?: number | null };

export function BalanceCards({ balances, types, live }: { balances: BalanceFragment[]; types: readonly string[]; live?: boolean }) {
  return (
    <div className="cards" data-testid="balances">
      {balances.map((b) => {
        const extra = b as BalanceFragment & Extra;
        return (
          <div className="card balance" key={b.type} data-type={b.type} style={{ borderTopColor: colourOf(b.type, types) }}>
            <div className="label">{b.type}</div>
            <div className="figure" data-testid={`balance-${b.type}`}>
              {fmtInt(b.balance)}
            </div>
            {typeof extra.held === "number" ? <div className="muted">{fmtInt(extra.held)} held by running calls</div> : null}
            {typeof extra.lowBalanceThreshold === "number" ? <div className="muted">alert below {fmtInt(extra.lowBalanceThreshold)}</div> : null}
            <div className="muted small">updated {fmtTime(b.updatedAt)}</div>
          </div>
        );
      })}
      {live !== undefined ? (
        <div className={`live-dot ${live ? "on" : ""}`} title={live ? "Pushed live by the server" : "Refreshed after every change made here"}>
          {live ? "● live" : "refreshed after each change"}
        </div>
      ) : null}
    </div>
  );
}
