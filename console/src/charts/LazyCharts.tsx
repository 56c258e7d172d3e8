/** The charts, code-split: the chart library loads only when a chart is on screen. */
import { lazy, Suspense, type ComponentProps } from "react";

const charts = () => import("./Charts");
const CreditsPerDay = lazy(() => charts().then((m) => ({ default: m.CreditsPerDayChart })));
const OperationCost = lazy(() => charts().then((m) => ({ default: m.OperationCostChart })));
const Top = lazy(() => charts().then((m) => ({ default: m.TopChart })));

const placeholder = <div className="chart placeholder">Loading chart…</div>;

export function CreditsPerDayChart(props: ComponentProps<typeof CreditsPerDay>) {
  return <Suspense fallback={placeholder}><CreditsPerDay {...props} /></Suspense>;
}
export function OperationCostChart(props: ComponentProps<typeof OperationCost>) {
  return <Suspense fallback={placeholder}><OperationCost {...props} /></Suspense>;
}
export function TopChart(props: ComponentProps<typeof Top>) {
  return <Suspense fallback={placeholder}><Top {...props} /></Suspense>;
}
