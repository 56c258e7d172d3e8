/**
 * The Prometheus metrics of one app instance, in a registry of its own (never prom-client's global
 * one), so several apps in one process — tests, or a bench running servers side by side — never
 * collide. Every label takes values from a closed set (credit types, schema coordinates, error codes,
 * estimator names, operation types): no ids, so the number of series stays bounded.
 */
import { Counter, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export interface CreditMetrics {
  readonly registry: Registry;
  /** Every debit, by credit type and operation; refunds do not subtract from it. */
  readonly charged: Counter<"type" | "operation">;
  readonly refunded: Counter<"type" | "operation">;
  /** Metered calls refused before or at the debit, by error code. */
  readonly refused: Counter<"code">;
  readonly estimatorFallbacks: Counter<"operation" | "estimator">;
  /** Debits, refunds and settlements that failed on the database, by stage. */
  readonly transactionFailures: Counter<"stage">;
  readonly debitDuration: Histogram;
  readonly graphqlRequests: Counter<"operation_type" | "outcome">;
  readonly graphqlDuration: Histogram<"operation_type" | "outcome">;
  /** Alerts raised, by kind (whether or not storing them succeeded). */
  readonly alerts: Counter<"kind">;
  /** Alert webhook deliveries that gave up after their retries, or were dropped. */
  readonly webhookFailures: Counter;
  /** Credits held before metered calls ran, by type and operation (the same as `charged`, by DESIGN.md's name). */
  readonly held: Counter<"type" | "operation">;
  /** What settled calls finally cost (held − released), by type and operation. */
  readonly cost: Counter<"type" | "operation">;
  /** Credits returned by RELEASE entries after settling at the actual cost, by type and operation. */
  readonly released: Counter<"type" | "operation">;
  /** actual / estimated of metered calls, per operation: shows which estimator is off. */
  readonly actualRatio: Histogram<"operation">;
  /** Meters that threw or returned garbage (the call settled at its hold), per operation. */
  readonly meterFailures: Counter<"operation" | "meter">;
}

// actual / estimated: 1 means the estimate was exact, below 1 the usual case of a hold released in part.
const RATIO_BUCKETS = [0, 0.1, 0.25, 0.5, 0.75, 0.9, 1, 1.25, 1.5, 2, 5];

// A debit is one SQL statement: sub-millisecond on a quiet database, tens of ms under contention.
const DEBIT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
// Whole GraphQL requests include the providers metered operations call.
const REQUEST_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export function createCreditMetrics(): CreditMetrics {
  const registry = new Registry();
  const registers = [registry];
  return {
    registry,
    charged: new Counter({
      name: "credits_charged_total",
      help: "Credits debited by metered calls, by credit type and operation (refunds are counted separately).",
      labelNames: ["type", "operation"],
      registers,
    }),
    refunded: new Counter({
      name: "credits_refunded_total",
      help: "Credits refunded, by credit type and operation: holds of calls that failed with a system error, results not delivered, holds the recovery pass refunded, and admins' refundCharge.",
      labelNames: ["type", "operation"],
      registers,
    }),
    refused: new Counter({
      name: "credits_refused_total",
      help: "Refusals of metered calls before anything was charged, by error code: one per error answered (an operation whose fields are refused for two balances counts two).",
      labelNames: ["code"],
      registers,
    }),
    estimatorFallbacks: new Counter({
      name: "credits_estimator_fallbacks_total",
      help: "Metered calls priced at the fixed fallback because their estimator failed.",
      labelNames: ["operation", "estimator"],
      registers,
    }),
    transactionFailures: new Counter({
      name: "credits_transaction_failures_total",
      help: "Credit debits, refunds and settlements that failed on the database, by stage.",
      labelNames: ["stage"],
      registers,
    }),
    debitDuration: new Histogram({
      name: "credits_debit_duration_seconds",
      help: "Time the debit statement took, for debits that succeeded.",
      buckets: DEBIT_BUCKETS,
      registers,
    }),
    graphqlRequests: new Counter({
      name: "graphql_requests_total",
      help: "GraphQL requests, by operation type (query, mutation, unknown) and outcome (success, error).",
      labelNames: ["operation_type", "outcome"],
      registers,
    }),
    graphqlDuration: new Histogram({
      name: "graphql_request_duration_seconds",
      help: "GraphQL request duration from the start of Apollo's pipeline to the response.",
      labelNames: ["operation_type", "outcome"],
      buckets: REQUEST_BUCKETS,
      registers,
    }),
    alerts: new Counter({
      name: "credits_alerts_total",
      help: "Alerts raised, by kind.",
      labelNames: ["kind"],
      registers,
    }),
    held: new Counter({
      name: "credits_held_total",
      help: "Credits held before metered calls ran, by credit type and operation.",
      labelNames: ["type", "operation"],
      registers,
    }),
    cost: new Counter({
      name: "credits_cost_total",
      help:
        "Credits calls cost when they settled (held minus released), by credit type and operation; a refund after settlement (an admin's, a response not delivered) counts in credits_refunded_total only.",
      labelNames: ["type", "operation"],
      registers,
    }),
    released: new Counter({
      name: "credits_released_total",
      help: "Credits returned after settling at the metered actual cost, by credit type and operation.",
      labelNames: ["type", "operation"],
      registers,
    }),
    actualRatio: new Histogram({
      name: "credits_actual_estimated_ratio",
      help: "Metered actual cost divided by the estimate, per operation.",
      labelNames: ["operation"],
      buckets: RATIO_BUCKETS,
      registers,
    }),
    meterFailures: new Counter({
      name: "credits_meter_failures_total",
      help: "Meters that failed; the call settled at its hold.",
      labelNames: ["operation", "meter"],
      registers,
    }),
    webhookFailures: new Counter({
      name: "credits_alert_webhook_failures_total",
      help: "Alert webhook deliveries that failed after every retry, or were dropped because too many were in flight.",
      registers,
    }),
  };
}

let processRegistry: Registry | undefined;

/**
 * Process metrics (CPU, memory, event loop, GC) describe the process, not an app, and prom-client's
 * collectors install process-wide observers that are never removed. So they are collected once per
 * process into their own registry and served beside each app's metrics.
 */
export function processMetricsRegistry(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/** The text a Prometheus scrape gets: the process metrics and this app's metrics. */
export async function scrapeMetrics(metrics: CreditMetrics): Promise<{ contentType: string; body: string }> {
  const merged = Registry.merge([processMetricsRegistry(), metrics.registry]);
  return { contentType: merged.contentType, body: await merged.metrics() };
}
