/**
 * An API error as the message the server gave (402, 403, 429 with its retry time…), never a blank
 * page. Focusable from script (tabIndex -1, not in the Tab order): a form's error takes the focus its
 * disabled submit button lost (./focus.ts). The message is isolated (./UserText.tsx): the server's
 * words may quote what someone typed.
 */
import type { ApiError } from "../api/client";
import { UserText } from "./UserText";

export function ErrorBanner({ error, onRetry }: { error: ApiError | undefined; onRetry?: () => void }) {
  if (!error) return null;
  return (
    <div className="error" role="alert" tabIndex={-1} data-code={error.code}>
      <strong>{error.code.replace(/_/g, " ").toLowerCase()}</strong>
      {error.status ? <span className="muted"> (HTTP {error.status})</span> : null}: <UserText>{error.display}</UserText>
      {onRetry ? (
        <button type="button" className="link" onClick={onRetry} data-testid="retry">
          Retry
        </button>
      ) : null}
    </div>
  );
}
