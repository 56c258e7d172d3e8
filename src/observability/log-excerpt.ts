/**
 * A client's error message as it goes into a log line. graphql-js quotes a refused variable's value in
 * its message, twice ("got invalid value …; Boolean cannot represent a non boolean value: …"), so a
 * 900 KB string sent where a Boolean goes made a 1.8 MB "client error" line at info: about 2 GB of
 * log a minute from one anonymous client within REQUEST_LIMIT, with whatever user data the value
 * held (an outside audit of the logs). The client still gets the whole message; the log keeps its
 * start, enough to tell what was refused, and how long it was.
 */
export const LOGGED_MESSAGE_CHARACTERS = 300;

export function logExcerpt(message: string, max = LOGGED_MESSAGE_CHARACTERS): string {
  if (message.length <= max) return message;
  return `${message.slice(0, max)}… (${message.length} characters in all)`;
}
