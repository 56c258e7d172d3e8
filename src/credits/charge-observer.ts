/**
 * Everything the charge path reports happens through this interface: logs, metrics and alerts
 * are separate observers composed into one, so the wrapper stays about charging.
 */
import type { ErrorCode } from "../errors/codes.js";

export interface ChargeFacts {
  requestId: string;
  operation: string;
  subscriptionId: string;
  creditType: string;
  actorId: string;
}

/** A hold was made (step 6): `charged` credits taken before the resolver runs. */
export interface ChargedEvent extends ChargeFacts {
  entryId: string;
  charged: number;
  estimated: number;
  remaining: number;
  adminOverride: boolean;
  fallback: boolean;
  debitSeconds: number;
}

/** A hold was settled with its cost standing (step 8): `cost` kept, `released` returned. */
export interface SettledEvent extends ChargeFacts {
  entryId: string;
  charged: number;
  estimated: number;
  /** The meter's reading; null without a meter (or when it failed). */
  actual: number | null;
  cost: number;
  released: number;
}

export interface MeterFailedEvent extends ChargeFacts {
  entryId: string;
  meter: string;
  /** The call settles at this, its hold. */
  charged: number;
  error: unknown;
}

export interface RefundedEvent extends ChargeFacts {
  entryId: string;
  refunded: number;
  remaining: number;
  /** As the REFUND entry records it. */
  reason: string;
  /** A system error's cause, for the log only: the ledger's reason never names it. */
  error?: unknown;
}

export interface RefusedEvent {
  requestId: string;
  operation: string;
  code: ErrorCode;
  message: string;
  subscriptionId?: string;
  creditType?: string;
  actorId?: string;
  required?: number;
  available?: number;
}

export interface FallbackEvent {
  requestId: string;
  operation: string;
  estimator: string;
  fallbackAmount: number;
  error: unknown;
}

export interface TransactionFailedEvent extends Partial<ChargeFacts> {
  requestId: string;
  operation: string;
  stage: "hold" | "refund" | "settle";
  entryId?: string;
  amount?: number;
  error: unknown;
}

/** A meter measured more than the call held: the call costs its hold, the difference is reported. */
export interface MismatchEvent extends ChargeFacts {
  entryId: string;
  /** The hold. */
  charged: number;
  actual: number;
}

export interface LateSettlementEvent extends ChargeFacts {
  entryId: string;
  charged: number;
}

export interface ChargeObserver {
  charged(event: ChargedEvent): void;
  settled(event: SettledEvent): void;
  meterFailed(event: MeterFailedEvent): void;
  refunded(event: RefundedEvent): void;
  refused(event: RefusedEvent): void;
  estimatorFallback(event: FallbackEvent): void;
  transactionFailed(event: TransactionFailedEvent): void;
  actualCostMismatch(event: MismatchEvent): void;
  /** A resolver succeeded after the recovery pass had already refunded its charge: it ran for free. */
  lateSettlement(event: LateSettlementEvent): void;
}

/** Fans every event out to several observers; one observer's failure never reaches the charge path. */
export function composeObservers(observers: ChargeObserver[], onError: (err: unknown) => void): ChargeObserver {
  const fan =
    <K extends keyof ChargeObserver>(method: K) =>
    (event: Parameters<ChargeObserver[K]>[0]) => {
      for (const observer of observers) {
        try {
          (observer[method] as (e: typeof event) => void)(event);
        } catch (err) {
          onError(err);
        }
      }
    };
  return {
    charged: fan("charged"),
    settled: fan("settled"),
    meterFailed: fan("meterFailed"),
    refunded: fan("refunded"),
    refused: fan("refused"),
    estimatorFallback: fan("estimatorFallback"),
    transactionFailed: fan("transactionFailed"),
    actualCostMismatch: fan("actualCostMismatch"),
    lateSettlement: fan("lateSettlement"),
  };
}
