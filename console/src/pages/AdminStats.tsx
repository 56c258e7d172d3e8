/**
 * Stats across customers (last 30 days): credits per day by type, top operations and top
 * subscriptions (coloured by credit type), and estimator accuracy: per operation, what the calls
 * settled at against what was held for them, (estimated − released) ÷ estimated. Refunds (an admin's
 * refundCharge, a system error's) are left out: they are not the estimator's error.
 */
import { StatsDocument } from "../generated/graphql";
import { useQuery } from "../api/hooks";
import { ErrorBanner } from "../components/ErrorBanner";
import { ReportStatus } from "../components/ReportStatus";
import { browserTimeZone, daysAgo, fmtInt, shortId } from "../components/format";
import { PageHeading } from "../components/PageHeading";
import { CreditsPerDayChart, OperationCostChart, TopChart } from "../charts/LazyCharts";

const FROM = daysAgo(29, browserTimeZone());

export function AdminStats({ types }: { types: readonly string[] }) {
  const timeZone = browserTimeZone();
  const { data, error, refetch } = useQuery(StatsDocument, { from: FROM, timeZone });
  return (
    <div data-testid="stats-page" aria-busy={!data && !error}>
      <header className="page-head">
        <PageHeading title="Stats across customers" />
        <span className="muted">last 30 days</span>
      </header>
      <ErrorBanner error={error} onRetry={() => void refetch()} />
      <ReportStatus loading={!data && !error} error={error} what="stats" />
      {data ? (
        <>
          <div className="grid2">
            <CreditsPerDayChart buckets={data.perDay} types={types} from={FROM} timeZone={timeZone} />
            <TopChart
              buckets={data.perOperationByType}
              types={types}
              title="Top operations by credits"
              label={(k) => k.replace(/^(Mutation|Query)\./, "")}
              rowHeader="Operation"
              testId="chart-top-operations"
            />
            <TopChart buckets={data.perSubscriptionByType} types={types} title="Top subscriptions by credits" label={shortId} rowHeader="Subscription" testId="chart-top-subscriptions" />
            <OperationCostChart buckets={data.perOperation} title="Estimator accuracy: held (estimate) vs settled (actual)" actual="settled" />
          </div>
          <section className="panel">
            <h2>Estimator accuracy per operation</h2>
            <p className="muted small" data-testid="accuracy-note">
              Actual ÷ estimated = (estimated − released) ÷ estimated: what the calls settled at against what was held for them. 100% when they
              cost what was held; lower when metered settlement released part of the hold. Refunds (an admin's, or a system error's) are not
              counted: they are not the estimator's error.
            </p>
            <div className="table-scroll" tabIndex={0} role="region" aria-label="Estimator accuracy per operation">
              <table data-testid="accuracy">
                <thead>
                  <tr>
                    <th>Operation</th>
                    <th className="num">Calls</th>
                    <th className="num">Held (estimated)</th>
                    <th className="num">Released</th>
                    <th className="num">Settled (actual)</th>
                    <th className="num">Refunded</th>
                    <th className="num">Actual ÷ estimated</th>
                  </tr>
                </thead>
                <tbody>
                  {data.perOperation.map((b) => {
                    const settled = b.estimated - b.released;
                    return (
                      <tr key={b.key}>
                        <td className="mono small">{b.key || "(none)"}</td>
                        <td className="num">{fmtInt(b.calls)}</td>
                        <td className="num">{fmtInt(b.estimated)}</td>
                        <td className="num">{fmtInt(b.released)}</td>
                        <td className="num">{fmtInt(settled)}</td>
                        <td className="num">{fmtInt(b.refunded)}</td>
                        <td className="num">{b.estimated === 0 ? "–" : `${Math.round((100 * settled) / b.estimated)}%`}</td>
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
