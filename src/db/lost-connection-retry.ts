/**
 * Statements that survive a lost connection: reads, which change nothing, and writes that have the
 * same effect sent twice (an idempotency key's claim or release). One whose connection died (a
 * killed backend, a pooled connection found dead, a database restarting) is simply sent again on a
 * fresh one: under a storm that terminated every backend every 100 ms, 43 of 300 previews and
 * balance queries answered 500 without this, none with it (test/e2e/faults-load.test.ts).
 * An error of the statement itself (bad input, a constraint) is not retried. The ledger's batch
 * statements have their own, longer schedule and look their commits up (src/db/retry-delays.ts).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { lostConnection } from "./errors.js";

/**
 * Pauses before each further attempt, about 2.6 s in all: the first at once (a fresh connection
 * right after a kill has the longest quiet time), then doubling. Shorter than the ledger's schedule
 * (retry-delays.ts): a read that still fails after this answers its caller rather than keep it
 * waiting, while nothing it holds is lost. Six attempts over 1.5 s were too few on a loaded
 * two-core host, where an attempt on a fresh connection takes 50-280 ms: under the kill storm of
 * faults-load.test.ts (every backend terminated every 100 ms) 13 of 300 reads ran out of them.
 */
export const READ_RETRY_DELAYS_MS: readonly number[] = [0, 25, 50, 100, 200, 400, 800, 1000];

export async function retryOnLostConnection<T>(read: () => Promise<T>, delaysMs: readonly number[] = READ_RETRY_DELAYS_MS): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await read();
    } catch (err) {
      if (attempt >= delaysMs.length || !lostConnection(err)) throw err;
      await sleep(delaysMs[attempt]);
    }
  }
}
