/** Counts what the charge path reports (DESIGN.md, charge path step 9): one ChargeObserver among several. */
import type { ChargeObserver } from "../credits/charge-observer.js";
import type { CreditMetrics } from "./metrics.js";

export function metricsObserver(metrics: CreditMetrics): ChargeObserver {
  return {
    charged(e) {
      metrics.charged.inc({ type: e.creditType, operation: e.operation }, e.charged);
      metrics.held.inc({ type: e.creditType, operation: e.operation }, e.charged);
      metrics.debitDuration.observe(e.debitSeconds);
    },
    settled(e) {
      metrics.cost.inc({ type: e.creditType, operation: e.operation }, e.cost);
      if (e.released > 0) metrics.released.inc({ type: e.creditType, operation: e.operation }, e.released);
      if (e.actual !== null && e.estimated > 0) metrics.actualRatio.observe({ operation: e.operation }, e.actual / e.estimated);
    },
    meterFailed(e) {
      metrics.meterFailures.inc({ operation: e.operation, meter: e.meter });
    },
    refunded(e) {
      metrics.refunded.inc({ type: e.creditType, operation: e.operation }, e.refunded);
    },
    refused(e) {
      metrics.refused.inc({ code: e.code });
    },
    estimatorFallback(e) {
      metrics.estimatorFallbacks.inc({ operation: e.operation, estimator: e.estimator });
    },
    transactionFailed(e) {
      metrics.transactionFailures.inc({ stage: e.stage });
    },
    // Counted as alerts (credits_alerts_total{kind}) by the alerts observer.
    actualCostMismatch() {},
    lateSettlement() {},
  };
}
