/** A ChargeObserver for tests that listen to a few of its events and ignore the rest. */
import type { ChargeObserver } from "../../src/credits/charge-observer.js";

export function observerOf(listening: Partial<ChargeObserver>): ChargeObserver {
  const ignore = () => {};
  return {
    charged: ignore,
    settled: ignore,
    meterFailed: ignore,
    refunded: ignore,
    refused: ignore,
    estimatorFallback: ignore,
    transactionFailed: ignore,
    actualCostMismatch: ignore,
    lateSettlement: ignore,
    ...listening,
  };
}
