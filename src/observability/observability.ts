/**
 * Everything operators see, assembled once per app: the metrics registry and its /metrics route,
 * the GraphQL metrics plugin, the alert service (database, log, webhook) and the charge observers
 * that feed them. createApp adds the observers, the route and the plugin; close() runs at shutdown.
 */
import type { ApolloServerPlugin, BaseContext } from "@apollo/server";
import type { Logger } from "pino";
import type { Config } from "../config/config.js";
import type { ChargeObserver } from "../credits/charge-observer.js";
import type { Database } from "../db/database.js";
import type { RouteHandler } from "../http/http-server.js";
import { AlertService } from "./alerts/alert-service.js";
import { alertsObserver } from "./alerts/alerts-observer.js";
import { SpikeDetector } from "./alerts/spike-detector.js";
import { WebhookNotifier, type WebhookRetryPolicy } from "./alerts/webhook-notifier.js";
import { systemClock, type Clock } from "./clock.js";
import { graphqlMetricsPlugin } from "./graphql-metrics-plugin.js";
import { createCreditMetrics, type CreditMetrics } from "./metrics.js";
import { metricsObserver } from "./metrics-observer.js";
import { metricsRoute } from "./metrics-route.js";

/** Knobs tests turn; production uses the defaults. */
export interface ObservabilityOptions {
  /** Time for spike windows, alert times and spike-check timers (default: the system clock). */
  clock?: Clock;
  /** Delay between a charge and the spike check it schedules (default: a tenth of ALERT_SPIKE_WINDOW, 1–30 s). */
  spikeCheckDelayMs?: number;
  webhookRetry?: Partial<WebhookRetryPolicy>;
}

export interface Observability {
  readonly metrics: CreditMetrics;
  readonly alerts: AlertService;
  readonly spikes: SpikeDetector;
  /** The metrics and alerts observers, for composeObservers. */
  readonly observers: ChargeObserver[];
  readonly metricsRoute: RouteHandler;
  graphqlPlugin<Ctx extends BaseContext>(): ApolloServerPlugin<Ctx>;
  /** Stops spike checks, finishes storing alerts, then gives webhook posts a moment and stops them. */
  close(): Promise<void>;
}

export function createObservability(
  config: Config,
  deps: { db: Database; logger: Logger },
  options: ObservabilityOptions = {},
): Observability {
  const clock = options.clock ?? systemClock;
  const metrics = createCreditMetrics();
  if (config.ALERT_WEBHOOK_URL && !config.ALERT_WEBHOOK_SECRET) {
    // Outside production only: there the configuration refuses it (src/config/config.ts).
    deps.logger.warn({ event: "alerts.webhook_unsigned" }, "ALERT_WEBHOOK_SECRET is not set: alert webhooks are posted unsigned");
  }
  const webhook = config.ALERT_WEBHOOK_URL
    ? new WebhookNotifier({
        url: config.ALERT_WEBHOOK_URL,
        secret: config.ALERT_WEBHOOK_SECRET,
        logger: deps.logger.child({ component: "alerts" }),
        retry: options.webhookRetry,
        onFailure: () => metrics.webhookFailures.inc(),
      })
    : undefined;
  const alerts = new AlertService({ db: deps.db, logger: deps.logger, clock, metrics, webhook });
  const spikes = new SpikeDetector({
    db: deps.db,
    clock,
    alerts,
    logger: deps.logger.child({ component: "alerts" }),
    settings: {
      windowMs: config.ALERT_SPIKE_WINDOW,
      baselineMs: config.ALERT_SPIKE_BASELINE,
      factor: config.ALERT_SPIKE_FACTOR,
      minCredits: config.ALERT_SPIKE_MIN_CREDITS,
      checkDelayMs: options.spikeCheckDelayMs,
    },
  });
  return {
    metrics,
    alerts,
    spikes,
    observers: [metricsObserver(metrics), alertsObserver(alerts, spikes)],
    metricsRoute: metricsRoute(metrics),
    graphqlPlugin: () => graphqlMetricsPlugin(metrics),
    async close() {
      spikes.close();
      await alerts.close();
    },
  };
}
