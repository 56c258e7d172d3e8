/**
 * Opaque page cursors: the base64url text of a listing's name and a row's id (`ledger:<entry uuid>`).
 * A cursor used to carry the row's `seq`, a number shared by every customer, so the gap between an
 * owner's consecutive cursors told how many rows all other customers wrote meanwhile (an outside
 * audit); a row's id is random and tells nothing. The listing still orders and cuts its pages by
 * `seq` internally: the page query looks up the seq of the row the cursor names, so a cursor keeps
 * pointing at the same place in a newest-first listing while new rows arrive.
 * The name keeps one listing's cursor out of another (an outside reports audit: an alerts cursor
 * passed to creditLedger listed the ledger from an unrelated place). Clients must treat the text as
 * opaque; the server checks it strictly, so a tampered or foreign cursor is refused instead of
 * reaching SQL, and a well-formed cursor naming no row of the listing is refused the same way.
 */
import { BadUserInputError } from "../errors/errors.js";

/** The listings whose pages are cut after a named row. */
export type CursorListing = "ledger" | "alerts";

/** Row ids as PostgreSQL prints a uuid: lowercase, so each row has one cursor spelling. */
const ROW_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Longer than any cursor this server makes ("alerts:" and a uuid are 43 characters, 58 in base64url). */
const MAX_CURSOR_LENGTH = 64;

export function encodeRowCursor(listing: CursorListing, rowId: string): string {
  return Buffer.from(`${listing}:${rowId}`, "utf8").toString("base64url");
}

/** The row id a cursor of `listing` names, or undefined when the text is not one this server made for it. */
export function decodeRowCursor(listing: CursorListing, cursor: string): string | undefined {
  if (cursor.length === 0 || cursor.length > MAX_CURSOR_LENGTH || !/^[A-Za-z0-9_-]+$/.test(cursor)) return undefined;
  const text = Buffer.from(cursor, "base64url").toString("utf8");
  const prefix = `${listing}:`;
  if (!text.startsWith(prefix)) return undefined;
  const rowId = text.slice(prefix.length);
  // Only the canonical spelling is accepted: base64url has spare bits, so other strings decode too.
  if (!ROW_ID.test(rowId) || encodeRowCursor(listing, rowId) !== cursor) return undefined;
  return rowId;
}

/** The answer to an `after` that is not a cursor of the listing, or names no row of it. */
export function notACursorOfListing(argumentName = "after"): BadUserInputError {
  return new BadUserInputError(
    `${argumentName} is not a cursor of this listing: pass the endCursor or an edge's cursor from a previous page`,
    argumentName,
  );
}

/** decodeRowCursor for an `after` argument: BAD_USER_INPUT naming the argument when it is not a cursor of the listing. */
export function parseAfterCursor(listing: CursorListing, after: string | null | undefined, argumentName = "after"): string | undefined {
  if (after === null || after === undefined) return undefined;
  const rowId = decodeRowCursor(listing, after);
  if (rowId === undefined) throw notACursorOfListing(argumentName);
  return rowId;
}
