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
