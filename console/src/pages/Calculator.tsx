/**
 * The cost calculator: paste an operation (and its variables), see what it would hold, over
 * creditPreview. A document with several operations names the one to price (operationName), as the
 * server asks.
 *
 * The answer (covered or not, what is short, the total) is a polite live region, in the page from
 * the start, so a screen reader announces each price; the table of fields follows it, outside.
 */
import { useEffect, useRef, useState } from "react";
import { PreviewDocument, type PreviewQuery } from "../generated/graphql";
import { ApiError, request } from "../api/client";
import { ErrorBanner } from "../components/ErrorBanner";
import { fmtCreditCount, fmtCredits, fmtInt } from "../components/format";
import { takeLostFocus } from "../components/focus";
import { UserText } from "../components/UserText";

const EXAMPLE = `mutation {
  runAiTask(subscriptionId: "$SUBSCRIPTION", input: { prompt: "Summarise our Q3 pipeline", maxTokens: 1500 }) { output }
  searchLeads(subscriptionId: "$SUBSCRIPTION", input: { query: "roofers in Austin", limit: 25 }) { total }
}`;

/** Per credit type the preview's totals do not cover: what the operation needs and what the balance has. */
function shortfalls(preview: Pick<PreviewQuery["creditPreview"], "totals" | "balances">): { type: string; needs: number; available: number }[] {
  return preview.totals.flatMap(({ type, amount }) => {
    // A type the subscription holds no balance of has none available (as the server counts it).
    const available = preview.balances.find((b) => b.type === type)?.balance ?? 0;
    return amount > available ? [{ type, needs: amount, available }] : [];
  });
}

export function Calculator({ subscriptionId }: { subscriptionId: string }) {
  const [query, setQuery] = useState(EXAMPLE.replaceAll("$SUBSCRIPTION", subscriptionId));
  const [variables, setVariables] = useState("");
  const [operationName, setOperationName] = useState("");
  const [result, setResult] = useState<PreviewQuery>();
  const [error, setError] = useState<ApiError>();
  const [pending, setPending] = useState(false);
  // The button, disabled while pricing, lost the focus on a mouse click: it gets it back once enabled.
  const run = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (!pending) takeLostFocus(run.current);
  }, [pending]);

  async function price() {
    setError(undefined);
    let parsed: Record<string, unknown> | undefined;
    if (variables.trim()) {
      try {
        parsed = JSON.parse(variables) as Record<string, unknown>;
      } catch {
        setError(new ApiError("Variables must be a JSON object, e.g. {\"limit\": 25}", "BAD_USER_INPUT", 0));
        return;
      }
    }
    setPending(true);
    try {
      setResult(await request(PreviewDocument, { input: { subscriptionId, query, variables: parsed, operationName: operationName.trim() || undefined } }));
    } catch (err) {
      setResult(undefined);
      setError(err instanceof ApiError ? err : new ApiError(String(err), "CLIENT_ERROR", 0));
    } finally {
      setPending(false);
    }
  }

  const preview = result?.creditPreview;
  return (
    <section className="panel" data-testid="calculator">
      <div className="grid2">
        <div>
          <label className="block">
            Operation
            <textarea rows={8} value={query} onChange={(e) => setQuery(e.target.value)} spellCheck={false} data-testid="calc-query" />
          </label>
          <label className="block">
            Variables (JSON, optional)
            <textarea rows={2} value={variables} onChange={(e) => setVariables(e.target.value)} spellCheck={false} />
          </label>
          <label className="block">
            Operation name (when the document has several)
            <input value={operationName} onChange={(e) => setOperationName(e.target.value)} spellCheck={false} placeholder="e.g. SearchRoofers" data-testid="calc-operation-name" />
          </label>
          <button type="button" className="primary" onClick={() => void price()} disabled={pending} ref={run} data-testid="calc-run">
            {pending ? "Pricing…" : "What would it hold?"}
          </button>
          <ErrorBanner error={error} />
        </div>
        <div>
          {/* Always there (empty until priced): a live region inserted with its text may go unannounced. */}
          <div data-testid="calc-result">
            <div role="status" aria-live="polite" data-testid="calc-answer">
              {preview ? <Answer preview={preview} /> : null}
            </div>
            {preview ? <FieldsTable items={preview.items} /> : null}
          </div>
          {preview ? null : (
            <div className="muted">
              <p>Prices come from the same code that holds credits when the operation runs, so a preview is the most it can cost.</p>
            </div>
          )}
        </div>
      </div>
    </section>
  );
}

type Preview = PreviewQuery["creditPreview"];

/** Whether the balance covers the operation, what each short type lacks, and the total per type. */
function Answer({ preview }: { preview: Preview }) {
  return (
    <>
      <p className={preview.sufficient ? "ok" : "warn"}>
        {preview.sufficient ? "The balance covers it." : "Not enough credits: this operation would be refused (402)."}
      </p>
      {preview.sufficient ? null : (
        <ul className="warn shortfalls">
          {shortfalls(preview).map((s) => (
            <li key={s.type} data-testid="calc-shortfall" data-type={s.type}>
              {s.type} needs {fmtCreditCount(s.needs)}, {fmtInt(s.available)} available
            </li>
          ))}
        </ul>
      )}
      <p>
        Total:{" "}
        {preview.totals.map((t, i) => (
          <span key={t.type}>
            {/* Read as "2 credits (ai), 25 credits (leads)", not one run-on string: the chips are apart only on screen. */}
            {i > 0 ? <span className="visually-hidden">, </span> : null}
            <span className="tag" data-testid={`calc-total-${t.type}`}>
              {fmtCredits(t.amount, t.type)}
            </span>
          </span>
        ))}
        {preview.totals.length === 0 ? <span className="muted">nothing metered</span> : null}
      </p>
    </>
  );
}

/** What each field of the operation would hold, and what priced it. */
function FieldsTable({ items }: { items: Preview["items"] }) {
  return (
    <div className="table-scroll" tabIndex={0} role="region" aria-label="What each field would hold">
      <table>
        <thead>
          <tr>
            <th>Field</th>
            <th>Type</th>
            <th className="num">Holds</th>
            <th>Priced by</th>
          </tr>
        </thead>
        <tbody>
          {items.map((item) => (
            <tr key={item.path.join(".")}>
              <td className="mono small">
                {/* The fields and aliases as typed in the operation. */}
                <UserText>{item.path.join(".")}</UserText>
              </td>
              <td>{item.type}</td>
              <td className="num">{fmtInt(item.amount)}</td>
              <td className="small">
                {item.estimator ?? "fixed price"}
                {item.fallback ? " (fallback)" : ""}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
