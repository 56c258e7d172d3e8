/**
 * A render error caught where it happened, so that it never empties the page (React unmounts the
 * whole tree on an error nothing catches, leaving <div id="root"> blank for good). What it caught is
 * shown by `fallback`, with a `retry` that draws its children again from scratch (remounted: their
 * queries are sent again). A new `resetKey` (another page) retries by itself.
 *
 * Used around the whole app (main.tsx), around the page under the console's header (App.tsx), and
 * around each chart (charts/LazyCharts.tsx, where the chart library's chunk may fail to load).
 */
import { Component, Fragment, type ReactNode } from "react";

interface Props {
  children: ReactNode;
  fallback: (error: Error, retry: () => void) => ReactNode;
  /** Another value forgets the error and draws the children again (a navigation, say). */
  resetKey?: unknown;
}

interface State {
  error: Error | undefined;
  /** Bumped by a retry: the children are remounted, not just re-rendered. */
  attempt: number;
  resetKey: unknown;
}

export class ErrorBoundary extends Component<Props, State> {
  state: State = { error: undefined, attempt: 0, resetKey: this.props.resetKey };

  static getDerivedStateFromError(error: unknown): Partial<State> {
    return { error: error instanceof Error ? error : new Error(String(error)) };
  }

  static getDerivedStateFromProps(props: Props, state: State): Partial<State> | null {
    // A new key forgets the error (the children were not mounted meanwhile); without one, nothing changes.
    return Object.is(props.resetKey, state.resetKey) ? null : { error: undefined, resetKey: props.resetKey };
  }

  private readonly retry = () => this.setState((state) => ({ error: undefined, attempt: state.attempt + 1 }));

  render(): ReactNode {
    if (this.state.error) return this.props.fallback(this.state.error, this.retry);
    return <Fragment key={this.state.attempt}>{this.props.children}</Fragment>;
  }
}

/** The message of an error as shown to people (never empty). */
export function errorText(error: Error): string {
  return error.message.trim() || error.name || "unknown error";
}

/** The page (or the whole console) could not be drawn: why, and a retry, or a reload as a last resort. */
export function PageProblem({ error, retry, what = "This page" }: { error: Error; retry: () => void; what?: string }) {
  return (
    <div className="error" role="alert" tabIndex={-1} data-testid="page-error">
      <strong>{what} could not be shown</strong>: {errorText(error)}{" "}
      <button type="button" className="link" onClick={retry} data-testid="retry">
        Retry
      </button>{" "}
      <button type="button" className="link" onClick={() => window.location.reload()}>
        Reload the page
      </button>
    </div>
  );
}
