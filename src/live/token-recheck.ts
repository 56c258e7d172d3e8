/**
 * Verifies a live-balance connection's token again while its socket stays open. connection_init
 * checks it once and closeWhenTokenExpires (./token-expiry.ts) ends the socket at its `exp`, but a
 * token can stop being valid before then: its key removed from the set at JWT_JWKS_URL (rotation,
 * revocation). Without this, a socket opened with such a token would go on receiving balance events
 * for as long as the token lives. The verifier answers a token still good from its cache, so a
 * check costs a lookup (or one verification when the key set was fetched again), once a minute.
 */
import { UnauthenticatedError } from "../errors/errors.js";

/** How often an open socket's token is verified again. */
export const TOKEN_RECHECK_INTERVAL_MS = 60_000;

interface WatchedSocket {
  readonly readyState: number;
  readonly OPEN: number;
  once(event: "close", listener: () => void): unknown;
}

export interface TokenRecheck {
  /** Verifies the connection's token (the server's TokenVerifier, on the token it was opened with). */
  verify(): Promise<unknown>;
  /** The token is refused now: the connection is to end, as at connection_init. */
  refused(err: UnauthenticatedError): void;
  /**
   * The token could not be checked (the key set could not be read): the socket stays open, since
   * the token may well be good, and the next check tries again.
   */
  unchecked(err: unknown): void;
}

/**
 * Verifies the token every TOKEN_RECHECK_INTERVAL_MS while `socket` is open, one check at a time
 * (the next is scheduled once one has answered); stops when the socket closes or the token is refused.
 */
export function recheckTokenWhileOpen(socket: WatchedSocket, recheck: TokenRecheck): void {
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const schedule = (): void => {
    timer = setTimeout(check, TOKEN_RECHECK_INTERVAL_MS);
    // An open socket's checks must not keep the process alive on their own.
    timer.unref();
  };
  const check = async (): Promise<void> => {
    if (closed || socket.readyState !== socket.OPEN) return;
    try {
      await recheck.verify();
    } catch (err) {
      // Closed while the token was checked: nothing is left to end or to check again.
      if (closed || socket.readyState !== socket.OPEN) return;
      if (err instanceof UnauthenticatedError) {
        recheck.refused(err);
        return;
      }
      recheck.unchecked(err);
    }
    if (!closed) schedule();
  };
  socket.once("close", () => {
    closed = true;
    clearTimeout(timer);
  });
  // A socket that closed while connection_init was checked never emits "close" again: not watched.
  if (socket.readyState === socket.OPEN) schedule();
}
