/**
 * A subscription's balances, one card per credit type, with what running calls hold and the
 * low-balance threshold when one is set.
 */
import type { BalanceFragment } from "../generated/graphql";
import { colourOf, fmtInt, fmtTime } from "./format";

export function BalanceCards({ balances, types, live }: { balances: BalanceFragment[]; types: readonly string[]; live?: boolean }) {
  return (
    <div className="cards" data-testid="balances">
      {balances.map((b) => {
        return (
          <div className="card balance" key={b.type} data-type={b.type} style={{ borderTopColor: colourOf(b.type, types) }}>
            <div className="label">{b.type}</div>
            <div className="figure" data-testid={`balance-${b.type}`}>
              {fmtInt(b.balance)}
            </div>
            {b.held > 0 ? <div className="muted" data-testid={`held-${b.type}`}>{fmtInt(b.held)} held by running calls</div> : null}
            {typeof b.lowBalanceThreshold === "number" ? <div className="muted">alert below {fmtInt(b.lowBalanceThreshold)}</div> : null}
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
