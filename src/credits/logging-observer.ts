/** One structured log line per hold, settlement, release, refund, fallback and refusal (DESIGN.md, charge path step 9). */
import type { Logger } from "pino";
import type { ChargeObserver } from "./charge-observer.js";
import { databaseCause } from "../db/errors.js";

function errorSummary(err: unknown): { type: string; message: string; cause?: string } {
  const cause = databaseCause(err);
  const summary = err instanceof Error ? { type: err.name, message: err.message } : { type: typeof err, message: String(err) };
  // Drizzle's message names the statement; the cause says why it failed (a lost connection, a lock timeout).
  return cause === undefined || summary.message.startsWith(cause) ? summary : { ...summary, cause };
}

export function loggingObserver(logger: Logger): ChargeObserver {
  const log = logger.child({ component: "credits" });
  return {
    charged: (e) => log.info({ event: "credits.held", ...e }, "credits held"),
    settled: (e) => log.info({ event: e.released > 0 ? "credits.released" : "credits.settled", ...e }, "credits settled"),
    meterFailed: (e) =>
      log.warn({ event: "credits.meter_failed", ...e, error: errorSummary(e.error) }, "meter failed; the call settles at its hold"),
    refunded: ({ error, ...e }) =>
      log.info({ event: "credits.refunded", ...e, ...(error === undefined ? {} : { error: errorSummary(error) }) }, "credits refunded"),
    refused: (e) => log.info({ event: "credits.refused", ...e }, "metered call refused"),
    estimatorFallback: (e) =>
      log.warn({ event: "credits.estimator_fallback", ...e, error: errorSummary(e.error) }, "estimator failed; fallback price used"),
    transactionFailed: (e) =>
      log.error({ event: "credits.transaction_failed", ...e, error: errorSummary(e.error) }, `credit ${e.stage} failed on the database`),
    actualCostMismatch: (e) => log.warn({ event: "credits.estimate_mismatch", ...e }, "metered actual cost exceeds the hold"),
    lateSettlement: (e) =>
      log.error({ event: "credits.late_settlement", ...e }, "resolver finished after its charge was refunded by recovery"),
  };
}
