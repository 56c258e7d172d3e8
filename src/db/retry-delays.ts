/**
 * Pauses before each further attempt of a ledger statement whose connection was lost (a killed
 * backend, a pooler or database restart), about 4.6 s in all.
 *
 * The first retry goes at once: a connection is usually lost because its backend was just
 * terminated, so a fresh connection opened right away has the longest time before anything
 * else happens to it. The pauses then double up to a second, so a database that stays away is
 * not hammered. Measured with the kill storm of test/e2e/faults-load (every backend of the
 * database terminated every 100 ms, two servers, three busy processes on the two cores): with
 * the earlier four retries over 1.3 s, 58–83% of the calls were answered; with these, 99.3–99.7%.
 * An attempt on a fresh connection there took 50–280 ms, so a shorter schedule runs out first.
 */
export const LOST_CONNECTION_RETRY_DELAYS_MS: readonly number[] = [0, 25, 50, 100, 200, 400, 800, 1000, 1000, 1000];
