/**
 * Text checks shared by the edge: JavaScript strings may hold unpaired UTF-16 surrogates (JSON's
 * "\ud800" decodes to one), which no database or UTF-8 encoder can keep: node-postgres writes them
 * as U+FFFD, so "eve\ud800" and "eve\ufffd" would become one owner. Such text is refused where it
 * enters (BAD_USER_INPUT, or 401 in a token's sub), never stored altered.
 */
declare global {
  interface String {
    /** ES2024 (Node 20+): false when the string holds an unpaired surrogate. */
    isWellFormed(): boolean;
  }
}

/** True when `text` is well-formed Unicode (no unpaired surrogate). */
export function isWellFormedText(text: string): boolean {
  return text.isWellFormed();
}

/** Unicode's control characters (C0, DEL and C1, e.g. U+0085 NEXT LINE): never part of a user id. */
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f]/;

export function hasControlCharacter(text: string): boolean {
  return CONTROL_CHARACTER.test(text);
}

/**
 * The longest user id: a token's `sub` and createSubscription's `ownerId` alike. Identity providers'
 * subjects are far shorter (Supabase's are UUIDs); the bound keeps ids out of the way of indexes.
 */
export const MAX_USER_ID_LENGTH = 255;

/**
 * Characters that show nothing: white space (JavaScript's, which is also what trim() removes, and
 * Unicode's, which adds U+0085), the default-ignorable code points (zero-width space and joiners,
 * word joiner, BOM, soft hyphen, Hangul fillers, variation selectors, bidi controls) and the blank
 * braille pattern.
 */
const INVISIBLE_ONLY = /^[\s\p{White_Space}\p{Default_Ignorable_Code_Point}\u2800]+$/u;

/** userIdProblem's answer for " bob ": refused, as trimming it would name another user. */
export const PADDED_USER_ID = "must not start or end with white space";

/**
 * The actor id under which Supabase's service key is recorded (auth/verifier.ts,
 * SERVICE_KEY_CALLER_ID). A user with this id would share the service key's ledger actor, its rate
 * limits and its Idempotency-Keys, and own subscriptions the service key lists as its own (an outside
 * authorization audit), so no user may have it.
 */
export const SERVICE_KEY_USER_ID = "service_role";

/**
 * The one rule for a user id (DESIGN.md, "Authentication": "`sub` is the user id"), shared by the
 * token verifier (a `sub` that breaks it is 401) and the admin input that names a user (`ownerId`
 * breaking it is 400), so that every subject that can sign in can be given a subscription, and
 * every id a subscription can be opened for can sign in. A user id is kept verbatim, never trimmed:
 * " bob " and "bob" would be two users, so an id with white space at either end is refused instead.
 *
 * Returns what is wrong, worded to follow the id's name ("ownerId …", "the sub claim …"), or
 * undefined when the id is fine.
 */
export function userIdProblem(id: string): string | undefined {
  if (id.length === 0) return "must not be empty";
  if (id.length > MAX_USER_ID_LENGTH) return `is too long: at most ${MAX_USER_ID_LENGTH} characters`;
  if (!isWellFormedText(id)) return "must be well-formed Unicode (it holds an unpaired surrogate)";
  if (hasControlCharacter(id)) return "must not contain control characters";
  if (INVISIBLE_ONLY.test(id)) return "must not be blank (only white space or invisible characters)";
  if (id !== id.trim()) return PADDED_USER_ID;
  if (id === SERVICE_KEY_USER_ID) return `must not be "${SERVICE_KEY_USER_ID}": that id is the service key's`;
  return undefined;
}
