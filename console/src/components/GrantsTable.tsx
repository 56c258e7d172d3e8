/** The grants a subscription's balances are made of, in the order they are spent, with their expiry. */
import type { SubscriptionDetailQuery } from "../generated/graphql";
import { fmtInt, fmtTime } from "./format";

type Grant = SubscriptionDetailQuery["subscription"]["grants"][number];

export function GrantsTable({ grants }: { grants: Grant[] }) {
  if (grants.length === 0) return null;
  return (
    <details className="panel grants" data-testid="grants">
      <summary>
        {grants.length} grant{grants.length === 1 ? "" : "s"} with credits left, in the order they are spent
        {grants.some((g) => g.expiresAt) ? ` · next expiry ${fmtTime(grants.filter((g) => g.expiresAt).map((g) => g.expiresAt!).sort()[0])}` : ""}
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
                <td className="small">{g.reason ?? ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </details>
  );
}
