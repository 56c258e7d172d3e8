/**
 * Opaque page cursors: the base64url text of a listing's name and a row's `seq` (`ledger:1234`).
 * `seq` only grows, so a cursor keeps pointing at the same place in a newest-first listing while new
 * rows arrive. The name keeps one listing's cursor out of another: both listings number their rows,
 * and an alerts cursor passed to creditLedger listed the ledger from an unrelated place, silently
 * (an outside reports audit). Clients must treat the text as opaque; the server checks it strictly,
 * so a tampered or foreign cursor is refused instead of reaching SQL.
 */
import { BadUserInputError } from "../errors/errors.js";

/** The listings whose pages are cut by `seq`. */
export type SeqListing = "ledger" | "alerts";

export function encodeSeqCursor(listing: SeqListing, seq: number): string {
  return Buffer.from(`${listing}:${seq}`, "utf8").toString("base64url");
}

/** The seq a cursor of `listing` stands for, or undefined when the text is not one this server made for it. */
export function decodeSeqCursor(listing: SeqListing, cursor: string): number | undefined {
  if (cursor.length === 0 || cursor.length > 48 || !/^[A-Za-z0-9_-]+$/.test(cursor)) return undefined;
  const text = Buffer.from(cursor, "base64url").toString("utf8");
  const prefix = `${listing}:`;
  if (!text.startsWith(prefix) || !/^[1-9][0-9]{0,15}$/.test(text.slice(prefix.length))) return undefined;
  const seq = Number(text.slice(prefix.length));
  // Only the canonical spelling is accepted: base64url has spare bits, so other strings decode too.
  if (!Number.isSafeInteger(seq) || encodeSeqCursor(listing, seq) !== cursor) return undefined;
  return seq;
}

/** decodeSeqCursor for an `after` argument: BAD_USER_INPUT naming the argument when it is not a cursor of the listing. */
export function parseAfterCursor(listing: SeqListing, after: string | null | undefined, argumentName = "after"): number | undefined {
  if (after === null || after === undefined) return undefined;
  const seq = decodeSeqCursor(listing, after);
  if (seq === undefined) {
    throw new BadUserInputError(
      `${argumentName} is not a cursor of this listing: pass the endCursor or an edge's cursor from a previous page`,
      argumentName,
    );
  }
  return seq;
}
