/**
 * An id as error messages show it: messages name the id they refuse, but a hostile 100,000-character
 * "id" must not come back as a 100 kB message.
 */
const MAX_SHOWN = 64;

export function quoteId(id: string): string {
  // An empty id shown as nothing read "Subscription  does not exist".
  if (id.length === 0) return '""';
  return id.length <= MAX_SHOWN ? id : `${id.slice(0, MAX_SHOWN)}… (${id.length} characters)`;
}
