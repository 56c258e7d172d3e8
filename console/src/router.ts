/** A small history-API router under /console (the server answers every /console/* path with index.html). */
import { useEffect, useState } from "react";

export const BASE = "/console";

/**
 * Set by a navigation inside the console (a link, Back or Forward), taken by the next page's heading
 * (components/PageHeading.tsx), which then takes the focus: a screen reader announces the new page,
 * and the Tab order starts from it rather than from a link that is gone. A first load leaves the
 * focus where the browser puts it (the sign-in field, an autofocused search).
 */
let moved = false;

/** True once after an in-app navigation: the heading asking takes the focus. */
export function takeNavigationFocus(): boolean {
  const was = moved;
  moved = false;
  return was;
}

export function navigate(path: string): void {
  window.history.pushState(null, "", `${BASE}${path}`);
  window.dispatchEvent(new PopStateEvent("popstate"));
}

/** The path below /console ("/" at the root). */
export function usePath(): string {
  const read = () => window.location.pathname.replace(/^\/console/, "") || "/";
  const [path, setPath] = useState(read);
  useEffect(() => {
    const update = () => {
      moved = true;
      setPath(read());
    };
    window.addEventListener("popstate", update);
    return () => window.removeEventListener("popstate", update);
  }, []);
  return path;
}
