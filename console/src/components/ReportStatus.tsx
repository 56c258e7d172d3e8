/**
 * What a usage report shows before its answer: "Loading…" (an outside audit found the panel blank
 * for the 30 s a slow report took), and, when the server gave up on it, what the console's reader
 * can do: the server says "narrow the window (from, to)", which the console's fixed 30 days cannot.
 */
import type { ApiError } from "../api/client";

const GAVE_UP = /did not finish within/;

export function ReportStatus({ loading, error, what }: { loading: boolean; error: ApiError | undefined; what: string }) {
  if (loading) return <p className="muted" data-testid="report-loading">Loading {what}…</p>;
  if (error && GAVE_UP.test(error.display)) {
    return (
      <p className="muted small" data-testid="report-timeout-hint">
        The console always shows the last 30 days. Try again later; if it keeps failing, tell your operator: a ledger whose
        statistics were never gathered (ANALYZE) makes these reports slow.
      </p>
    );
  }
  return null;
}
