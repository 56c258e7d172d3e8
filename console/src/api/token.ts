/**
 * The signed-in token: taken from the address (/console#token=<JWT>) into session storage, and the
 * fragment removed from the address bar and history at once, so the token is not left in the
 * browser's history or shown over a shoulder; or pasted on the sign-in page.
 */
const KEY = "graphql-credits.token";

/** Moves a token from the URL fragment into session storage; returns the stored token, if any. */
export function adoptTokenFromAddress(): string | null {
  const match = /^#token=([^&]+)/.exec(window.location.hash);
  if (match) {
    sessionStorage.setItem(KEY, decodeURIComponent(match[1]));
    window.history.replaceState(window.history.state, "", window.location.pathname + window.location.search);
  }
  return sessionStorage.getItem(KEY);
}

export function storeToken(token: string): void {
  sessionStorage.setItem(KEY, token.trim().replace(/^Bearer\s+/i, ""));
}

export function clearToken(): void {
  sessionStorage.removeItem(KEY);
}

export function currentToken(): string | null {
  return sessionStorage.getItem(KEY);
}

/** The token's claims, read without verifying (the server verifies); for display only. */
export function tokenSubject(token: string): string | undefined {
  try {
    const payload = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))) as { sub?: string };
    return payload.sub;
  } catch {
    return undefined;
  }
}
