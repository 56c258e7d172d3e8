/**
 * The end of a session: any UNAUTHENTICATED answer (an HTTP request's, or the live-balance socket's
 * 4401 close) is reported here, and the app (App.tsx) signs out to the sign-in page with the
 * server's reason, closing the live connection. A report about a token that is no longer the
 * signed-in one (a late answer to an old session's request) is ignored by the app.
 */
export type UnauthenticatedHandler = (reason: string, token: string | null) => void;

const handlers = new Set<UnauthenticatedHandler>();

export function onUnauthenticated(handler: UnauthenticatedHandler): () => void {
  handlers.add(handler);
  return () => void handlers.delete(handler);
}

export function reportUnauthenticated(reason: string, token: string | null): void {
  for (const handler of [...handlers]) handler(reason, token);
}
