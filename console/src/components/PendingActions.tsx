/**
 * Admin actions of one scope (a subscription, or "new-subscription") sent by a form that is gone
 * (the admin went to the Ledger and came back while a grant ran): still being processed, without an
 * answer (a Retry sends it again with the same Idempotency-Key), or how it ended meanwhile. So
 * coming back never looks like nothing was sent, inviting the same action a second time; entering
 * the same values again is safe anyway (api/pendingActions.ts reuses the key).
 *
 * A polite status region: a change of what is pending is announced. An ending shown here is
 * forgotten when this leaves the page; `onEnded` runs once per ending (the page reads its figures again).
 */
import { useEffect, useRef, useSyncExternalStore } from "react";
import { forgetEnded, pendingSnapshot, resend, subscribePending, type PendingAction } from "../api/pendingActions";
import { UserText } from "./UserText";
import { fmtTime } from "./format";

function note(entry: PendingAction) {
  const sent = `sent ${fmtTime(new Date(entry.sentAt).toISOString())}`;
  switch (entry.state) {
    case "running":
      return (
        <>
          Still being processed: {entry.label} ({sent}). It is written once: entering the same values again waits for its outcome.
        </>
      );
    case "unanswered":
      return (
        <>
          No answer yet: {entry.label} ({sent}) may have been written. Retry sends it again with the same Idempotency-Key, so it is written at most once.
        </>
      );
    case "done":
      return <>Done: {entry.label} was written.</>;
    case "refused":
      return (
        <>
          Refused meanwhile: {entry.label}: <UserText>{entry.error?.display}</UserText>
        </>
      );
  }
}

export function PendingActions({ scope, onEnded }: { scope: string; onEnded?: (entry: PendingAction) => void }) {
  const all = useSyncExternalStore(subscribePending, pendingSnapshot);
  // Orphans only: what a form on screen sent, that form shows itself.
  const orphans = all.filter((entry) => entry.scope === scope && entry.owner === undefined);
  const reported = useRef(new Set<string>());
  const shownEnded = useRef(new Set<string>());
  const ended = useRef(onEnded);
  ended.current = onEnded;

  useEffect(() => {
    for (const entry of orphans) {
      if (entry.state !== "done" && entry.state !== "refused") continue;
      shownEnded.current.add(entry.signature);
      if (entry.state === "done" && !reported.current.has(entry.signature)) {
        reported.current.add(entry.signature);
        ended.current?.(entry);
      }
    }
  });
  // What ended meanwhile was shown here: forgotten once this leaves the page.
  useEffect(() => () => shownEnded.current.forEach(forgetEnded), []);

  // How it ends shows here, as for any orphan (still being processed, then done, refused or unanswered again).
  const retry = (entry: PendingAction) => void resend(entry.signature);

  return (
    <div role="status" data-testid="pending-actions">
      {orphans.map((entry) => (
        <div className="pending-note" key={entry.signature} data-testid="pending-action" data-state={entry.state}>
          {note(entry)}
          {entry.state === "unanswered" ? (
            <button type="button" className="link" onClick={() => retry(entry)} data-testid="pending-retry">
              Retry
            </button>
          ) : null}
        </div>
      ))}
    </div>
  );
}

/**
 * A form's answer 409: the server is still running an earlier send with this action's key (the
 * same values, sent before: from this page before the admin left it, or a send whose answer was
 * lost). Not an error inviting another try with a new key: the form asks again with the same key
 * (api/hooks.ts) and shows the first send's outcome; `onRetry` once it has stopped asking.
 */
export function StillRunningNote({ onRetry }: { onRetry?: () => void }) {
  return (
    <div className="pending-note" role="status" data-testid="still-running">
      Still being processed: an earlier send of these same values has not finished. Its outcome shows here once it has; it is written once.
      {onRetry ? (
        <button type="button" className="link" onClick={onRetry} data-testid="retry">
          Ask again
        </button>
      ) : null}
    </div>
  );
}
