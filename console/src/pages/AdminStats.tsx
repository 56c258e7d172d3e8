/** Stats across customers (last 30 days): credits per day by type, top operations, top subscriptions, estimator accuracy. */
import { StatsDocument } from "../generated/graphql";
import { useQuery } from "../api/hooks";
import { ErrorBanner } from "../components/ErrorBanner";
import { browserTimeZone, daysAgo, fmtInt, shortId } from "../components/format";
import { CreditsPerDayChart, OperationCostChart, TopChart } from "../charts/LazyCharts";

const FROM = daysAgo(29);

export function AdminStats({ types }: { types: readonly string[] }) {
  const timeZone = browserTimeZone();
  const { data, error, refetch } = useQuery(StatsDocument, { from: FROM, timeZone });
  return (
    <div data-testid="stats-page">
      <header className="page-head">
        <h1>Stats across customers</h1>
        <span className="muted">last 30 days</span>
      </header>
      <ErrorBanner error={error} onRetry={() => void refetch()} />
      {data ? (
        <>
          <div className="grid2">
            <CreditsPerDayChart buckets={data.perDay} types={types} from={FROM} timeZone={timeZone} />
            <TopChart buckets={data.perOperation} title="Top operations by credits" label={(k) => k.replace(/^(Mutation|Query)\./, "")} testId="chart-top-operations" />
            <TopChart buckets={data.perSubscription} title="Top subscriptions by credits" label={shortId} testId="chart-top-subscriptions" />
            <OperationCostChart buckets={data.perOperation} title="Estimator accuracy: held (estimate) vs cost" />
          </div>
          <section className="panel">
            <h2>Estimator accuracy per operation</h2>
            <p className="muted small">cost ÷ held: 100% when calls cost what was held; lower when metered settlement released part of the hold or a refund returned it.</p>
            <div className="table-scroll" tabIndex={0} role="region" aria-label="Estimator accuracy per operation">
              <table data-testid="accuracy">
                <thead>
                  <tr>
                    <th>Operation</th>
                    <th className="num">Calls</th>
                    <th className="num">Held</th>
                    <th className="num">Cost</th>
                    <th className="num">Cost ÷ held</th>
                  </tr>
                </thead>
                <tbody>
                  {data.perOperation.map((b) => {
                    const held = b.estimated;
                    return (
                      <tr key={b.key}>
                        <td className="mono small">{b.key || "(none)"}</td>
                        <td className="num">{fmtInt(b.calls)}</td>
                        <td className="num">{fmtInt(held)}</td>
                        <td className="num">{fmtInt(b.credits)}</td>
                        <td className="num">{held === 0 ? "–" : `${Math.round((100 * b.credits) / held)}%`}</td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </div>
          </section>
        </>
      ) : null}
    </div>
  );
}
