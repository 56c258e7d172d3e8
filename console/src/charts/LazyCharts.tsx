/**
 * The charts, code-split: the chart library loads only when a chart is on screen.
 *
 * Its chunk can fail to load: the server restarting while a page with charts opens, or, after a
 * deploy, an old page asking for a hashed asset the new build no longer has (a 404). Each chart then
 * says so where it would be, with a Retry, and the rest of the page stays as it was (an error nothing
 * catches would empty the whole page). React.lazy keeps a rejected load for good, so a retry makes
 * new lazy components over a new import(), for every chart on screen at once (one Retry brings them
 * all); a chart that fails to draw for another reason is caught the same way.
 */
import { lazy, Suspense, useSyncExternalStore, type ComponentProps, type ReactNode } from "react";
import { ErrorBoundary, errorText } from "../components/ErrorBoundary";

type ChartsModule = typeof import("./Charts");

/** The chunk's import, shared by the charts; forgotten when it failed, so that the next try fetches again. */
let loading: Promise<ChartsModule> | undefined;
function loadCharts(): Promise<ChartsModule> {
  loading ??= import("./Charts").catch((err: unknown) => {
    loading = undefined;
    throw err;
  });
  return loading;
}

/** One generation of lazy charts: a retry replaces them all. */
function lazyCharts(attempt: number) {
  return {
    attempt,
    CreditsPerDay: lazy(() => loadCharts().then((m) => ({ default: m.CreditsPerDayChart }))),
    OperationCost: lazy(() => loadCharts().then((m) => ({ default: m.OperationCostChart }))),
    Top: lazy(() => loadCharts().then((m) => ({ default: m.TopChart }))),
  };
}

let charts = lazyCharts(0);
const listeners = new Set<() => void>();
function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  return () => void listeners.delete(listener);
}

/** Loads the chart library again, for every chart on screen. */
function retryCharts(): void {
  charts = lazyCharts(charts.attempt + 1);
  for (const listener of listeners) listener();
}

function useCharts() {
  return useSyncExternalStore(subscribe, () => charts);
}

const placeholder = <div className="chart placeholder">Loading chart…</div>;

/** A chunk that could not be fetched, as browsers word it (Chromium, Firefox, Safari) or as Vite's preload does. */
const LOAD_FAILURE = /dynamically imported module|error loading dynamically imported module|Importing a module script failed|Unable to preload/i;

function ChartProblem({ error }: { error: Error }) {
  const notLoaded = LOAD_FAILURE.test(error.message);
  return (
    <div className="chart placeholder chart-error" role="alert" data-testid="chart-error">
      <p>
        {notLoaded
          ? "The chart could not be loaded: the server did not answer, or the console was updated since this page was opened."
          : `The chart could not be drawn: ${errorText(error)}`}{" "}
        <button type="button" className="link" onClick={retryCharts} data-testid="retry">
          Retry
        </button>
        {notLoaded ? (
          <>
            {" "}
            <button type="button" className="link" onClick={() => window.location.reload()}>
              Reload the page
            </button>
          </>
        ) : null}
      </p>
    </div>
  );
}

function Chart({ attempt, children }: { attempt: number; children: ReactNode }) {
  return (
    <ErrorBoundary resetKey={attempt} fallback={(error) => <ChartProblem error={error} />}>
      <Suspense fallback={placeholder}>{children}</Suspense>
    </ErrorBoundary>
  );
}

type Props<K extends "CreditsPerDay" | "OperationCost" | "Top"> = ComponentProps<ReturnType<typeof lazyCharts>[K]>;

export function CreditsPerDayChart(props: Props<"CreditsPerDay">) {
  const { attempt, CreditsPerDay } = useCharts();
  return (
    <Chart attempt={attempt}>
      <CreditsPerDay {...props} />
    </Chart>
  );
}
export function OperationCostChart(props: Props<"OperationCost">) {
  const { attempt, OperationCost } = useCharts();
  return (
    <Chart attempt={attempt}>
      <OperationCost {...props} />
    </Chart>
  );
}
export function TopChart(props: Props<"Top">) {
  const { attempt, Top } = useCharts();
  return (
    <Chart attempt={attempt}>
      <Top {...props} />
    </Chart>
  );
}
