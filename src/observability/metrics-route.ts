/** GET (and HEAD) /metrics: the Prometheus text format (process metrics and this app's credit and GraphQL metrics). */
import type { RouteHandler } from "../http/http-server.js";
import { scrapeMetrics, type CreditMetrics } from "./metrics.js";

export function metricsRoute(metrics: CreditMetrics): RouteHandler {
  return async ({ res, requestId }) => {
    const { contentType, body } = await scrapeMetrics(metrics);
    // Content-Length set here, so that HEAD (answered by this route, without the body) says it too.
    res.writeHead(200, {
      "content-type": contentType,
      "content-length": Buffer.byteLength(body),
      "x-request-id": requestId,
      "cache-control": "no-store",
    });
    res.end(body);
  };
}
