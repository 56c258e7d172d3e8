/**
 * A subscription's balances, one card per credit type, with what running calls hold and the
 * low-balance threshold when one is set (a balance below it is marked), and whether they are live:
 * a lost live connection says so ("reconnecting…") rather than leaving the figures silently stale.
 *
 * A change of a balance (pushed live, or read after an action) is announced politely to screen
 * readers, once per change: "leads balance 82" (useBalanceAnnouncement). The figures themselves are
 * not a live region: they re-render with every read, changed or not.
 */
import { useEffect, useRef, useState } from "react";
import type { BalanceFragment } from "../generated/graphql";
import type { LiveState } from "../live/connection";
import { colourOf, fmtInt, fmtTime } from "./format";

const LIVE_LABELS: Record<LiveState, { text: string; title: string }> = {
  live: { text: "● live", title: "Pushed live by the server" },
  connecting: { text: "connecting…", title: "Connecting to the server for live balances" },
  reconnecting: {
    text: "○ reconnecting… balances may be behind",
    title: "The live connection was lost: trying again, and reading the balances again once it is back",
  },
  off: { text: "refreshed after each change", title: "Refreshed after every change made here" },
};

/**
 * What to announce about the balances: the types whose balance changed since the last one seen
 * ("leads balance 82, ai balance 7"), kept until the next change. The first balances shown are not
 * announced (they are read with the page), nor is a read that changed nothing.
 */
function useBalanceAnnouncement(balances: BalanceFragment[]): string {
  const seen = useRef<Map<string, number>>(undefined);
  const [text, setText] = useState("");
  const figures = balances.map((b) => `${b.type}\u0000${b.balance}`).join("\u0001");
  useEffect(() => {
    const before = seen.current;
    seen.current = new Map(balances.map((b) => [b.type, b.balance]));
    if (!before) return;
    const changed = balances.filter((b) => before.has(b.type) && before.get(b.type) !== b.balance);
    if (changed.length > 0) setText(changed.map((b) => `${b.type} balance ${fmtInt(b.balance)}`).join(", "));
    // Only a change of a figure matters: `balances` is a new array at every read.
  }, [figures]);
  return text;
}

export function BalanceCards({ balances, types, live }: { balances: BalanceFragment[]; types: readonly string[]; live?: LiveState }) {
  const announcement = useBalanceAnnouncement(balances);
  return (
    <div className="cards" data-testid="balances">
      {/* In the page from the start, empty: a screen reader announces text set in a live region it already knows. */}
      <div className="visually-hidden" role="status" aria-live="polite" data-testid="balance-announcement">
        {announcement}
      </div>
      {balances.map((b) => {
        const low = typeof b.lowBalanceThreshold === "number" && b.lowBalanceThreshold > 0 && b.balance < b.lowBalanceThreshold;
        return (
          <div className={`card balance${low ? " low" : ""}`} key={b.type} data-type={b.type} data-low={low || undefined} style={{ borderTopColor: low ? undefined : colourOf(b.type, types) }}>
            <div className="label">{b.type}</div>
            <div className="figure" data-testid={`balance-${b.type}`}>
              {fmtInt(b.balance)}
            </div>
            {b.held > 0 ? <div className="muted" data-testid={`held-${b.type}`}>{fmtInt(b.held)} held by running calls</div> : null}
            {low ? (
              <div className="warn small" data-testid={`low-${b.type}`}>
                ▲ low: below its alert threshold of {fmtInt(b.lowBalanceThreshold!)}
              </div>
            ) : typeof b.lowBalanceThreshold === "number" ? (
              <div className="muted small">alert below {fmtInt(b.lowBalanceThreshold)}</div>
            ) : null}
            <div className="muted small">updated {fmtTime(b.updatedAt)}</div>
          </div>
        );
      })}
      {live !== undefined ? (
        <div className={`live-dot ${live === "live" ? "on" : live === "reconnecting" ? "down" : ""}`} title={LIVE_LABELS[live].title} role="status" data-testid="live-state" data-state={live}>
          {LIVE_LABELS[live].text}
        </div>
      ) : null}
    </div>
  );
}
