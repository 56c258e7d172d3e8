/**
 * Counts and times every GraphQL request Apollo handles. Labels: the operation type ("query",
 * "mutation", "subscription", or "unknown" when the document did not parse or validate) and the
 * outcome ("success", or "error" when the response carries any error). Operation names are chosen
 * by clients, so they are deliberately not a label.
 */
import { performance } from "node:perf_hooks";
import type { ApolloServerPlugin, BaseContext } from "@apollo/server";
import type { CreditMetrics } from "./metrics.js";

export function graphqlMetricsPlugin<Ctx extends BaseContext>(metrics: CreditMetrics): ApolloServerPlugin<Ctx> {
  return {
    async requestDidStart() {
      const started = performance.now();
      return {
        async willSendResponse({ operation, response }) {
          const hasErrors =
            response.body.kind === "single"
              ? (response.body.singleResult.errors?.length ?? 0) > 0
              : (response.body.initialResult.errors?.length ?? 0) > 0;
          const labels = { operation_type: operation?.operation ?? "unknown", outcome: hasErrors ? "error" : "success" };
          metrics.graphqlRequests.inc(labels);
          metrics.graphqlDuration.observe(labels, (performance.now() - started) / 1000);
        },
      };
    },
  };
}
