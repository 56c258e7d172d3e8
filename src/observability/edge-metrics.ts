/**
 * Metrics of the edge (issue 15): requests refused by REQUEST_LIMIT, and rate-limit store failures
 * (Redis down or slow), counted apart from real limits so an outage is not read as a flood.
 * Registered in the app's own registry beside the credit metrics.
 */
import { Counter, type Registry } from "prom-client";

export interface EdgeMetrics {
  /** GraphQL requests refused by REQUEST_LIMIT before their body was read. */
  readonly requestsLimited: Counter;
  /** Rate-limit checks the store could not answer (each answered per RATE_LIMIT_ON_STORE_ERROR). */
  readonly rateLimitStoreFailures: Counter<"store">;
}

export function createEdgeMetrics(registry: Registry): EdgeMetrics {
  const registers = [registry];
  return {
    requestsLimited: new Counter({
      name: "http_requests_limited_total",
      help: "GraphQL requests refused (429) by the per-caller REQUEST_LIMIT before their body was read.",
      registers,
    }),
    rateLimitStoreFailures: new Counter({
      name: "rate_limit_store_failures_total",
      help:
        "Rate-limit checks the store (memory or Redis) failed to answer. Apart from real limits: a call refused for it (RATE_LIMIT_ON_STORE_ERROR=closed) also counts in credits_refused_total{code=\"RATE_LIMITED\"}, the answer its caller got.",
      labelNames: ["store"],
      registers,
    }),
  };
}
