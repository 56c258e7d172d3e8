/** An API error as the message the server gave (402, 403, 429 with its retry time…), never a blank page. */
import type { ApiError } from "../api/client";

export function ErrorBanner({ error, onRetry }: { error: ApiError | undefined; onRetry?: () => void }) {
  if (!error) return null;
  return (
    <div className="error" role="alert" data-code={error.code}>
      <strong>{error.code.replace(/_/g, " ").toLowerCase()}</strong>
      {error.status ? <span className="muted"> (HTTP {error.status})</span> : null}: {error.display}
      {onRetry ? (
        <button type="button" className="link" onClick={onRetry}>
          Retry
        </button>
      ) : null}
    </div>
  );
}
