/** GET /metrics: the Prometheus text format (process metrics and this app's credit and GraphQL metrics). */
import type { RouteHandler } from "../http/http-server.js";
import { scrapeMetrics, type CreditMetrics } from "./metrics.js";

export function metricsRoute(metrics: CreditMetrics): RouteHandler {
  return async ({ res, requestId }) => {
    const { contentType, body } = await scrapeMetrics(metrics);
    res.writeHead(200, { "content-type": contentType, "x-request-id": requestId, "cache-control": "no-store" });
    res.end(body);
  };
}
