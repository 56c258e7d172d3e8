/**
 * "← Newer" and "Older →" over cursor pages. A button is disabled at its end (the first page has
 * nothing newer, the last nothing older), and a disabled button loses the focus to the page's body,
 * where a keyboard or screen-reader user would start again from the top: the button that reached
 * the end hands the focus to the other one (the way back) instead. With `announce`, the page number
 * is a polite live region ("page 3"), so moving between pages is heard.
 */
import { useLayoutEffect, useRef } from "react";

export function Pager({
  page,
  hasOlder,
  onNewer,
  onOlder,
  testIdPrefix,
  announce = false,
}: {
  /** This page's number, from 1 (the newest). */
  page: number;
  hasOlder: boolean;
  onNewer: () => void;
  onOlder: () => void;
  /** Test ids `<prefix>-newer` and `<prefix>-older` (none without). */
  testIdPrefix?: string;
  /** Shows "page N" in a polite live region. */
  announce?: boolean;
}) {
  const newer = useRef<HTMLButtonElement>(null);
  const older = useRef<HTMLButtonElement>(null);
  // The button last pressed: when it is disabled under the focus, the focus goes to the other one.
  const pressed = useRef<HTMLButtonElement | null>(null);
  const atNewest = page <= 1;
  const atOldest = !hasOlder;

  // Before the browser paints (and moves the focus of a disabled button to the body).
  useLayoutEffect(() => {
    const from = pressed.current;
    if (!from || !from.disabled) return;
    const active = document.activeElement;
    if (active !== from && active !== document.body && active !== null) return;
    const other = from === older.current ? newer.current : older.current;
    if (other && !other.disabled) other.focus();
    pressed.current = null;
  }, [atNewest, atOldest]);

  const testId = (end: string) => (testIdPrefix ? `${testIdPrefix}-${end}` : undefined);
  return (
    <>
      {announce ? (
        <span className="muted" role="status" data-testid={testId("page")}>
          page {page}
        </span>
      ) : null}
      <button type="button" ref={newer} disabled={atNewest} onClick={(e) => ((pressed.current = e.currentTarget), onNewer())} data-testid={testId("newer")}>
        ← Newer
      </button>
      <button type="button" ref={older} disabled={atOldest} onClick={(e) => ((pressed.current = e.currentTarget), onOlder())} data-testid={testId("older")}>
        Older →
      </button>
    </>
  );
}
