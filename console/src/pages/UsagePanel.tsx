/**
 * A subscription's usage over the last 30 days: credits per day by type, and per operation held vs
 * cost. Live: read again on the subscription's live balance events (a charge, a release, a refund),
 * at most once every USAGE_REFRESH_MS, so the charts follow its calls without a reload.
 */
import { SubscriptionUsageDocument } from "../generated/graphql";
import { useQuery } from "../api/hooks";
import { useLiveRefresh } from "../live/useLiveRefresh";
import { ErrorBanner } from "../components/ErrorBanner";
import { ReportStatus } from "../components/ReportStatus";
import { browserTimeZone, daysAgo, fmtDecimal, fmtInt } from "../components/format";
import { CreditsPerDayChart, OperationCostChart } from "../charts/LazyCharts";

const FROM = daysAgo(29, browserTimeZone());
/** At most one read of the usage this often, however many events arrive. */
export const USAGE_REFRESH_MS = 2_000;

export function UsagePanel({ subscriptionId, types, reloadKey }: { subscriptionId: string; types: readonly string[]; reloadKey: number }) {
  const timeZone = browserTimeZone();
  const { data, error, refetch } = useQuery(SubscriptionUsageDocument, { subscriptionId, from: FROM, timeZone }, { reloadKey });
  useLiveRefresh([subscriptionId], () => void refetch(), USAGE_REFRESH_MS);
  return (
    <section className="panel" data-testid="usage" aria-busy={!data && !error}>
      <ErrorBanner error={error} onRetry={() => void refetch()} />
      <ReportStatus loading={!data && !error} error={error} what="usage" />
      {data ? (
        <>
          <div className="grid2">
            <CreditsPerDayChart buckets={data.perDay} types={types} from={FROM} timeZone={timeZone} />
            <OperationCostChart buckets={data.perOperation} />
          </div>
          <div className="table-scroll" tabIndex={0} role="region" aria-label="Usage per operation">
            <table>
              <thead>
                <tr>
                  <th>Operation</th>
                  <th className="num">Calls</th>
                  <th className="num">Held</th>
                  <th className="num">Released</th>
                  <th className="num">Refunded</th>
                  <th className="num">Cost</th>
                  <th className="num">Avg / call</th>
                </tr>
              </thead>
              <tbody>
                {data.perOperation.map((b) => (
                  <tr key={b.key} data-testid="usage-row">
                    <td className="mono small">{b.key || "(none)"}</td>
                    <td className="num">{fmtInt(b.calls)}</td>
                    <td className="num">{fmtInt(b.estimated)}</td>
                    <td className="num">{fmtInt(b.released)}</td>
                    <td className="num">{fmtInt(b.refunded)}</td>
                    <td className="num">{fmtInt(b.credits)}</td>
                    <td className="num">{fmtDecimal(b.averageCredits)}</td>
                  </tr>
                ))}
                {data.perOperation.length === 0 ? (
                  <tr>
                    <td colSpan={7} className="muted">
                      No metered calls in the last 30 days.
                    </td>
                  </tr>
                ) : null}
              </tbody>
            </table>
          </div>
        </>
      ) : null}
    </section>
  );
}
