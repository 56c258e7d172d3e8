/**
 * The CONFLICT (409) answered while a call holding the same Idempotency-Key still runs, on metered
 * calls (database-idempotency-gate.ts) and admin mutations (src/admin/idempotent-mutation.ts). It
 * ends by itself, so it says when to send again, in `extensions.retryAfterSeconds` and the
 * Retry-After header, as a 429 does: a client can then wait and retry without guessing from prose.
 */
import { ConflictError } from "../errors/errors.js";

/**
 * How long a client waits before it sends the call again. Most calls finish within that; a longer
 * one, or a key whose server died under it (free again within about 20 s), answers 409 again, so
 * a client that retries every couple of seconds learns the outcome soon after it exists.
 */
export const STILL_RUNNING_RETRY_AFTER_SECONDS = 2;

export function stillRunningConflict(message: string): ConflictError {
  return new ConflictError(message, { retryAfterSeconds: STILL_RUNNING_RETRY_AFTER_SECONDS });
}
