/**
 * The grants a subscription's balances are made of, in the order they are spent, with their expiry.
 * A grant whose expiry has passed is no longer shown (nor its expiry as the "next" one), even before
 * the server's sweep writes the EXPIRATION: at that moment `onExpired` asks for the grants again.
 */
import { useEffect, useState } from "react";
import type { GrantFragment } from "../generated/graphql";
import { fmtInt, fmtTime } from "./format";
import { UserText } from "./UserText";

/** The grants not yet expired at `now`. */
function current(grants: GrantFragment[], now: number): GrantFragment[] {
  return grants.filter((g) => !g.expiresAt || Date.parse(g.expiresAt) > now);
}

export function GrantsTable({ grants: all, onExpired }: { grants: GrantFragment[]; onExpired?: () => void }) {
  const [now, setNow] = useState(() => Date.now());
  const grants = current(all, now);
  const expiries = grants.filter((g) => g.expiresAt).map((g) => g.expiresAt!).sort();
  const nextExpiry = expiries[0];

  // Wake up when the next expiry passes: hide that grant and read the grants again.
  useEffect(() => {
    if (!nextExpiry) return;
    // setTimeout's longest wait is about 24.8 days; a later expiry is looked at again then.
    const wait = Math.min(Date.parse(nextExpiry) - Date.now() + 50, 2 ** 31 - 1);
    const timer = setTimeout(() => {
      setNow(Date.now());
      onExpired?.();
    }, Math.max(0, wait));
    return () => clearTimeout(timer);
  }, [nextExpiry, onExpired]);

  if (grants.length === 0) return null;
  return (
    <details className="panel grants" data-testid="grants">
      <summary>
        {/* A heading, so a screen reader's list of headings finds the grants among the page's parts. */}
        <h2 className="summary-heading">
          {grants.length} grant{grants.length === 1 ? "" : "s"} with credits left, in the order they are spent
          {nextExpiry ? <span data-testid="next-expiry"> · next expiry {fmtTime(nextExpiry)}</span> : ""}
        </h2>
      </summary>
      <div className="table-scroll" tabIndex={0} role="region" aria-label="Grants">
        <table>
          <thead>
            <tr>
              <th>Type</th>
              <th>Category</th>
              <th className="num">Remaining</th>
              <th className="num">Of</th>
              <th className="num">Priority</th>
              <th>Expires</th>
              <th>Reason</th>
            </tr>
          </thead>
          <tbody>
            {grants.map((g) => (
              <tr key={g.id} data-testid="grant-row">
                <td>{g.type}</td>
                <td>
                  <span className="tag">{g.category}</span>
                </td>
                <td className="num">{fmtInt(g.remaining)}</td>
                <td className="num">{fmtInt(g.amount)}</td>
                <td className="num">{g.priority}</td>
                <td className="small nowrap">{g.expiresAt ? fmtTime(g.expiresAt) : "never"}</td>
                <td className="small">
                  <UserText>{g.reason ?? ""}</UserText>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </details>
  );
}
