/**
 * A ledger, newest first, with filters (type, kinds, operation) and cursor pages. One subscription's,
 * or every subscription's for an admin (no subscriptionId). The operation filter takes the full name
 * (`Mutation.lookupPhones`) or the short one in any case (`lookupPhones`, `LookupPhones`), mapped to
 * the full name with the server's creditCatalog (./operations.ts), whose operations it suggests.
 * For admins, a debit with credits left to refund offers "refund…" (./debitsLeft.ts).
 */
import { useId, useState } from "react";
import { LedgerDocument, type LedgerFilter, type LedgerKind } from "../generated/graphql";
import { useDebounced, useQuery } from "../api/hooks";
import { ErrorBanner } from "./ErrorBanner";
import { fmtCreditCount, fmtInt, fmtTime, shortId } from "./format";
import { navigate } from "../router";
import { resolveOperation, useKnownOperations } from "./operations";
import { refundOffered, useDebitsLeft } from "./debitsLeft";
import { Pager } from "./Pager";
import { UserText } from "./UserText";

// Every kind the schema has: a kind added to LedgerKind fails the type check here until listed.
const KINDS = ["GRANT", "DEBIT", "RELEASE", "REFUND", "ADJUSTMENT", "EXPIRATION"] as const satisfies readonly LedgerKind[];
type MissingKind = Exclude<LedgerKind, (typeof KINDS)[number]>;
const everyKindListed: [MissingKind] extends [never] ? true : MissingKind = true;
void everyKindListed;
const PAGE = 20;

export function LedgerTable({
  subscriptionId,
  types,
  reloadKey = 0,
  onRefund,
}: {
  subscriptionId?: string;
  types: readonly string[];
  reloadKey?: number;
  /** Given (to admins): a DEBIT row with credits left to refund offers to refund that charge. */
  onRefund?: (entryId: string) => void;
}) {
  const [type, setType] = useState("");
  const [kind, setKind] = useState("");
  const [operation, setOperation] = useState("");
  // Cursors of the pages before this one (a stack), and this page's.
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const after = cursors[cursors.length - 1];
  const knownOperations = useKnownOperations();
  const operationTyped = useDebounced(operation.trim());
  const resolved = resolveOperation(operationTyped, knownOperations);
  const operationFilter = resolved.operation;
  const operationsListId = useId();
  const operationHintId = useId();
  const filter: LedgerFilter = {
    ...(type ? { type } : {}),
    ...(kind ? { kinds: [kind as LedgerKind] } : {}),
    ...(operationFilter ? { operation: operationFilter } : {}),
  };
  const { data, error, loading, refetch } = useQuery(
    LedgerDocument,
    { subscriptionId, filter: Object.keys(filter).length > 0 ? filter : undefined, first: PAGE, after },
    { reloadKey },
  );
  const resetPages = () => setCursors([undefined]);
  const page = data?.creditLedger;
  const debits = onRefund ? (page?.edges.filter((e) => e.node.kind === "DEBIT").map(({ node }) => ({ id: node.id, amount: node.amount, createdAt: node.createdAt })) ?? []) : [];
  const debitsLeft = useDebitsLeft(onRefund ? subscriptionId : undefined, debits, reloadKey);

  return (
    <section className="panel" data-testid="ledger">
      <div className="toolbar">
        <label>
          Type
          <select value={type} onChange={(e) => (setType(e.target.value), resetPages())} data-testid="ledger-type">
            <option value="">all</option>
            {types.map((t) => (
              <option key={t}>{t}</option>
            ))}
          </select>
        </label>
        <label>
          Kind
          <select value={kind} onChange={(e) => (setKind(e.target.value), resetPages())} data-testid="ledger-kind">
            <option value="">all</option>
            {KINDS.map((k) => (
              <option key={k}>{k}</option>
            ))}
          </select>
        </label>
        <label>
          Operation
          <input
            value={operation}
            placeholder="runAiTask"
            list={operationsListId}
            aria-describedby={operationFilter && operationFilter !== operationTyped ? operationHintId : undefined}
            onChange={(e) => (setOperation(e.target.value), resetPages())}
            data-testid="ledger-operation"
          />
          <datalist id={operationsListId}>
            {knownOperations.map((op) => (
              <option key={op} value={op} />
            ))}
          </datalist>
        </label>
        {operationFilter && operationFilter !== operationTyped ? (
          <span className="muted small" id={operationHintId} data-testid="ledger-operation-resolved">
            = <UserText className="mono">{operationFilter}</UserText>
            {resolved.others.length ? ` (for ${resolved.others.join(", ")}, type its full name)` : null}
          </span>
        ) : null}
        <span className="spacer" />
        <Pager
          page={cursors.length}
          hasOlder={!!page?.pageInfo.hasNextPage}
          onNewer={() => setCursors(cursors.slice(0, -1))}
          onOlder={() => setCursors([...cursors, page!.pageInfo.endCursor ?? undefined])}
          testIdPrefix="ledger"
          announce
        />
      </div>
      <ErrorBanner error={error} onRetry={() => void refetch()} />
      <div className="table-scroll" tabIndex={0} role="region" aria-label="Ledger entries">
        <table className={loading ? "loading" : ""}>
          <thead>
            <tr>
              <th>When</th>
              {subscriptionId ? null : <th>Subscription</th>}
              <th>Type</th>
              <th>Kind</th>
              <th className="num">Amount</th>
              <th className="num">Balance after</th>
              <th>Operation</th>
              <th>Actor</th>
              <th>Reason</th>
            </tr>
          </thead>
          <tbody>
            {page?.edges.map(({ node }) => (
              <tr key={node.id} data-testid="ledger-row" data-kind={node.kind}>
                <td className="nowrap">{fmtTime(node.createdAt)}</td>
                {subscriptionId ? null : (
                  <td>
                    <a href={`/console/subscriptions/${node.subscriptionId}`} onClick={(e) => (e.preventDefault(), navigate(`/subscriptions/${node.subscriptionId}`))}>
                      {shortId(node.subscriptionId)}
                    </a>
                  </td>
                )}
                <td>{node.type}</td>
                <td>
                  <span className={`kind kind-${node.kind.toLowerCase()}`}>{node.kind}</span>
                  {node.adminOverride ? <span className="tag">override</span> : null}
                </td>
                <td className={`num ${node.amount < 0 ? "neg" : "pos"}`}>{node.amount > 0 ? `+${fmtInt(node.amount)}` : fmtInt(node.amount)}</td>
                <td className="num">{fmtInt(node.balanceAfter)}</td>
                <td className="mono small">
                  <UserText>{node.operation ?? ""}</UserText>
                  {node.estimated !== null && node.estimated !== undefined && node.kind === "DEBIT" ? <span className="muted"> (est. {node.estimated})</span> : null}
                </td>
                <td className="small">
                  <UserText>{node.actorId ?? ""}</UserText>
                </td>
                <td className="small" title={node.id}>
                  <UserText>{node.reason ?? ""}</UserText>
                  {onRefund && node.kind === "DEBIT" && refundOffered(debitsLeft, node.id) ? (
                    <button
                      type="button"
                      className="link small"
                      onClick={() => onRefund(node.id)}
                      title={debitsLeft instanceof Map ? `${fmtCreditCount(debitsLeft.get(node.id) ?? 0)} left to refund` : undefined}
                      // Every row's button says "refund…": its name says which entry it refunds.
                      aria-label={`Refund entry ${shortId(node.id)}${debitsLeft instanceof Map ? ` (${fmtCreditCount(debitsLeft.get(node.id) ?? 0)} left)` : ""}`}
                      data-testid="ledger-refund"
                    >
                      refund…
                    </button>
                  ) : null}
                </td>
              </tr>
            ))}
            {page && page.edges.length === 0 ? (
              <tr>
                <td colSpan={9} className="muted">
                  No entries.
                </td>
              </tr>
            ) : null}
          </tbody>
        </table>
      </div>
    </section>
  );
}
