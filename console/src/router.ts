/** A small history-API router under /console (the server answers every /console/* path with index.html). */
import { useEffect, useState } from "react";

export const BASE = "/console";

export function navigate(path: string): void {
  window.history.pushState(null, "", `${BASE}${path}`);
  window.dispatchEvent(new PopStateEvent("popstate"));
}

/** The path below /console ("/" at the root). */
export function usePath(): string {
  const read = () => window.location.pathname.replace(/^\/console/, "") || "/";
  const [path, setPath] = useState(read);
  useEffect(() => {
    const update = () => setPath(read());
    window.addEventListener("popstate", update);
    return () => window.removeEventListener("popstate", update);
  }, []);
  return path;
}
