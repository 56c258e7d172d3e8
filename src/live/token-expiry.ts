/**
 * Ends a live-balance connection when the token it was opened with expires. The token is verified
 * at connection_init (and again every minute for a key removed meanwhile: ./token-recheck.ts); without
 * this a socket opened a minute before its token's `exp` would go on receiving balance events for as
 * long as it stays open, which is a sign-in that never ends.
 * The close is 4401, as for a bad token at connection_init, so a client knows to get a new token
 * and connect again (graphql-ws clients do not retry 4401 as is).
 */
import { decodeJwt } from "jose";

/** Node's timers fire at once past 2^31 − 1 ms (about 24.8 days); a later expiry is waited for in steps. */
const LONGEST_TIMER_MS = 2_147_483_647;

interface ClosableSocket {
  close(code: number, reason: string): void;
  once(event: "close", listener: () => void): unknown;
}

/** The token's `exp` in ms since the epoch, or undefined when it has none (the token never expires). */
function expiresAtMs(token: string): number | undefined {
  const { exp } = decodeJwt(token);
  return typeof exp === "number" && Number.isFinite(exp) ? exp * 1000 : undefined;
}

/**
 * Closes `socket` with `code` when the (already verified) token's `exp` passes, give or take the
 * clock tolerance the token was verified with (JWT_CLOCK_TOLERANCE: a token accepted within it
 * would otherwise be closed the moment it opened); stops waiting when the socket closes first. A
 * token without `exp` leaves the socket alone.
 */
export function closeWhenTokenExpires(
  socket: ClosableSocket,
  token: string,
  code: number,
  options: { toleranceMs?: number; now?: () => number } = {},
): void {
  const now = options.now ?? Date.now;
  const exp = expiresAtMs(token);
  if (exp === undefined) return;
  const expiresAt = exp + (options.toleranceMs ?? 0);
  let timer: NodeJS.Timeout | undefined;
  const wait = (): void => {
    const left = expiresAt - now();
    if (left <= 0) {
      // The words HTTP uses for an expired token, and what to do here (well within a close reason's 123 bytes).
      socket.close(code, "Token expired: sign in again, then reconnect with the new token");
      return;
    }
    timer = setTimeout(wait, Math.min(left, LONGEST_TIMER_MS));
    // A socket's expiry must not keep the process alive on its own.
    timer.unref();
  };
  socket.once("close", () => clearTimeout(timer));
  wait();
}
