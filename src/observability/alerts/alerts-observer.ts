/**
 * Turns charge-path events into alerts (DESIGN.md, "Observability"):
 *   transactionFailed, lateSettlement → FAILED_TRANSACTION
 *   refunded by recovery after CHARGE_SETTLE_TIMEOUT on a live instance → FAILED_TRANSACTION
 *   actualCostMismatch               → ESTIMATE_MISMATCH
 *   charged                          → a debounced USAGE_SPIKE check, off the charge path
 * Every method returns at once; the alert work runs in the background.
 */
import type { ChargeObserver } from "../../credits/charge-observer.js";
import { sqlState } from "../../db/errors.js";
import { isUuid } from "../../util/uuid.js";
import type { AlertService } from "./alert-service.js";
import type { SpikeDetector } from "./spike-detector.js";
import { RECOVERY_OVERDUE_REASON } from "../../recovery/recovery-pass.js";

/** What an alert may say about an error: its class and SQLSTATE, never its message (it can quote SQL or values). */
function errorFacts(err: unknown): { errorType: string; sqlState?: string } {
  const state = sqlState(err);
  return { errorType: err instanceof Error ? err.name : typeof err, ...(state ? { sqlState: state } : {}) };
}

/** What happens to the money after each kind of failure (see the charge wrapper and the recovery pass). */
const AFTERMATH: Record<"hold" | "refund" | "settle", string> = {
  hold: "nothing was charged",
  refund: "the charge stays pending: the refund is tried again in the background, and the recovery pass refunds it if that fails too",
  settle: "the charge stays pending: the settlement is tried again in the background once the database answers, and the recovery pass refunds it if that never happens",
};

export function alertsObserver(alerts: AlertService, spikes: SpikeDetector): ChargeObserver {
  return {
    charged(e) {
      if (e.charged > 0) spikes.noteCharge(e.subscriptionId);
    },
    settled() {},
    meterFailed() {},
    refunded(e) {
      // A hold still open on a live instance after CHARGE_SETTLE_TIMEOUT: the call hangs or runs longer than allowed.
      if (e.reason !== RECOVERY_OVERDUE_REASON) return;
      alerts.raise({
        kind: "FAILED_TRANSACTION",
        subscriptionId: e.subscriptionId,
        message:
          `${e.operation} held ${e.refunded} ${e.creditType} credits for longer than CHARGE_SETTLE_TIMEOUT on a live instance: ` +
          `the hold was refunded, and the call is not charged if it finishes later`,
        details: {
          stage: "settle-timeout",
          operation: e.operation,
          requestId: e.requestId,
          creditType: e.creditType,
          amount: e.refunded,
          entryId: e.entryId,
          actorId: e.actorId,
        },
      });
    },
    refused() {},
    estimatorFallback() {},
    transactionFailed(e) {
      const what = e.amount === undefined ? "credits" : [e.amount, e.creditType, "credits"].filter((part) => part !== undefined).join(" ");
      alerts.raise({
        kind: "FAILED_TRANSACTION",
        // Only a well-formed id can be stored (the column is a uuid); the alert is kept either way.
        subscriptionId: isUuid(e.subscriptionId) ? e.subscriptionId : null,
        message: `The ${e.stage} of ${what} for ${e.operation} failed on the database; ${AFTERMATH[e.stage]}`,
        details: {
          stage: e.stage,
          operation: e.operation,
          requestId: e.requestId,
          ...(e.creditType !== undefined ? { creditType: e.creditType } : {}),
          ...(e.amount !== undefined ? { amount: e.amount } : {}),
          ...(e.entryId !== undefined ? { entryId: e.entryId } : {}),
          ...(e.actorId !== undefined ? { actorId: e.actorId } : {}),
          ...errorFacts(e.error),
        },
      });
    },
    lateSettlement(e) {
      alerts.raise({
        kind: "FAILED_TRANSACTION",
        subscriptionId: e.subscriptionId,
        message:
          `${e.operation} finished after the recovery pass had refunded its charge of ${e.charged} ${e.creditType} credits: ` +
          `the call ran without being paid for`,
        details: {
          stage: "late-settlement",
          operation: e.operation,
          requestId: e.requestId,
          creditType: e.creditType,
          amount: e.charged,
          entryId: e.entryId,
          actorId: e.actorId,
        },
      });
    },
    actualCostMismatch(e) {
      alerts.raise({
        kind: "ESTIMATE_MISMATCH",
        subscriptionId: e.subscriptionId,
        message: `${e.operation} held ${e.charged} ${e.creditType} credits but its meter measured an actual cost of ${e.actual}; it was charged the hold`,
        details: {
          operation: e.operation,
          requestId: e.requestId,
          creditType: e.creditType,
          entryId: e.entryId,
          hold: e.charged,
          charged: e.charged,
          actual: e.actual,
          difference: e.actual - e.charged,
          actorId: e.actorId,
        },
      });
    },
  };
}
