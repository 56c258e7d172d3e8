/**
 * A page's h1, and the browser tab's title (`<title> · graphql-credits console`), so each page is
 * told apart in the tab, the history and by a screen reader. After a navigation inside the console
 * the heading takes the focus (tabIndex -1: focusable from script, not in the Tab order), so the new
 * page is announced and the Tab order goes on from its top (router.ts).
 */
import { useEffect, useRef, type ReactNode } from "react";
import { takeNavigationFocus } from "../router";

export const CONSOLE_TITLE = "graphql-credits console";

/** The browser tab's title for a page. */
export function pageTitle(title: string): string {
  return `${title} · ${CONSOLE_TITLE}`;
}

export function PageHeading({ title, children, id }: { title: string; children?: ReactNode; id?: string }) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = pageTitle(title);
  }, [title]);
  useEffect(() => {
    if (takeNavigationFocus()) heading.current?.focus();
  }, []);
  return (
    <h1 tabIndex={-1} ref={heading} id={id}>
      {children ?? title}
    </h1>
  );
}
