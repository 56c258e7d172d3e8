/**
 * Opaque page cursors: the base64url text of a row's `seq`. `seq` only grows, so a cursor keeps
 * pointing at the same place in a newest-first listing while new rows arrive. Clients must treat the
 * text as opaque; the server checks it strictly, so a tampered or foreign cursor is refused instead
 * of reaching SQL.
 */
import { BadUserInputError } from "../errors/errors.js";

export function encodeSeqCursor(seq: number): string {
  return Buffer.from(String(seq), "utf8").toString("base64url");
}

/** The seq a cursor stands for, or undefined when the text is not a cursor this server made. */
export function decodeSeqCursor(cursor: string): number | undefined {
  if (cursor.length === 0 || cursor.length > 32 || !/^[A-Za-z0-9_-]+$/.test(cursor)) return undefined;
  const text = Buffer.from(cursor, "base64url").toString("utf8");
  if (!/^[1-9][0-9]{0,15}$/.test(text)) return undefined;
  const seq = Number(text);
  // Only the canonical spelling is accepted: base64url has spare bits, so other strings decode too.
  if (!Number.isSafeInteger(seq) || encodeSeqCursor(seq) !== cursor) return undefined;
  return seq;
}

/** decodeSeqCursor for an `after` argument: BAD_USER_INPUT naming the argument when it is not a cursor. */
export function parseAfterCursor(after: string | null | undefined, argumentName = "after"): number | undefined {
  if (after === null || after === undefined) return undefined;
  const seq = decodeSeqCursor(after);
  if (seq === undefined) {
    throw new BadUserInputError(
      `${argumentName} is not a cursor of this listing: pass the endCursor or an edge's cursor from a previous page`,
      argumentName,
    );
  }
  return seq;
}
