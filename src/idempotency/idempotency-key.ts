/** The Idempotency-Key header's format: 1 to 255 printable ASCII characters (a UUID is the usual choice). */
import { BadUserInputError } from "../errors/errors.js";

export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;

const PRINTABLE_ASCII = /^[\x20-\x7e]+$/;

/** Returns the key, or throws BAD_USER_INPUT saying what a valid key looks like. */
export function parseIdempotencyKey(raw: string): string {
  if (raw.length === 0 || raw.length > MAX_IDEMPOTENCY_KEY_LENGTH || !PRINTABLE_ASCII.test(raw)) {
    throw new BadUserInputError(
      `Idempotency-Key must be 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} printable ASCII characters (a UUID works well)`,
      "Idempotency-Key",
    );
  }
  return raw;
}
