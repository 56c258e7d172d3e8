/**
 * The signed-in token: taken from the address (/console#token=<JWT>) into session storage, and the
 * fragment removed from the address bar and history at once, so the token is not left in the
 * browser's history or shown over a shoulder; or pasted on the sign-in page. A sign-in link opened
 * in a tab that already shows the console changes only the fragment (no reload): App.tsx adopts it
 * on `hashchange` with takeTokenFromAddress.
 */
const KEY = "graphql-credits.token";

/** Moves a token from the URL fragment into session storage; returns it, or null when the fragment has none. */
export function takeTokenFromAddress(): string | null {
  const match = /^#token=([^&]+)/.exec(window.location.hash);
  if (!match) return null;
  const token = decodeURIComponent(match[1]);
  sessionStorage.setItem(KEY, token);
  window.history.replaceState(window.history.state, "", window.location.pathname + window.location.search);
  return token;
}

/** Moves a token from the URL fragment into session storage; returns the stored token, if any. */
export function adoptTokenFromAddress(): string | null {
  takeTokenFromAddress();
  return sessionStorage.getItem(KEY);
}

/** The token as stored: trimmed, without a "Bearer " prefix. */
export function normaliseToken(token: string): string {
  return token.trim().replace(/^Bearer\s+/i, "");
}

export function storeToken(token: string): void {
  sessionStorage.setItem(KEY, normaliseToken(token));
}

export function clearToken(): void {
  sessionStorage.removeItem(KEY);
}

export function currentToken(): string | null {
  return sessionStorage.getItem(KEY);
}

function claimsOf(token: string): { sub?: string; exp?: number } | undefined {
  try {
    return JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))) as { sub?: string; exp?: number };
  } catch {
    return undefined;
  }
}

/** The token's claims, read without verifying (the server verifies); for display only. */
export function tokenSubject(token: string): string | undefined {
  return claimsOf(token)?.sub;
}

/**
 * When the token says it expires (ms since the epoch), read without verifying: only to know when
 * to ask the server again (App.tsx), never to decide by itself that the token is bad.
 */
export function tokenExpiry(token: string): number | undefined {
  const exp = claimsOf(token)?.exp;
  return typeof exp === "number" && Number.isFinite(exp) ? exp * 1000 : undefined;
}
