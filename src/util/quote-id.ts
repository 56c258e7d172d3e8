/**
 * An id as error messages show it: messages name the id they refuse, but a hostile 100,000-character
 * "id" must not come back as a 100 kB message.
 */
const MAX_SHOWN = 64;

export function quoteId(id: string): string {
  // An empty or padded id shown as is read "Subscription  does not exist": quoted, its white space shows.
  if (id.length === 0 || id.trim() !== id) return JSON.stringify(id.length <= MAX_SHOWN ? id : id.slice(0, MAX_SHOWN));
  return id.length <= MAX_SHOWN ? id : `${id.slice(0, MAX_SHOWN)}… (${id.length} characters)`;
}
