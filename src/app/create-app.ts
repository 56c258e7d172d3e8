/**
 * Assembles the server: database, schema (type-graphql resolvers → @credits and @rateLimit
 * transformers), Apollo Server with its plugins, and the HTTP layer. Everything the process needs
 * is created here from the configuration, so tests build the real thing the same way main does.
 */
import { ApolloServer } from "@apollo/server";
import { ApolloServerPluginCacheControlDisabled } from "@apollo/server/plugin/disabled";
import type { GraphQLSchema } from "graphql";
import type { Logger } from "pino";
import type { Config } from "../config/config.js";
import { connectDatabase } from "../db/connect.js";
import type { DatabaseHandle } from "../db/database.js";
import { createTokenVerifier } from "../auth/verifier.js";
import { CREDIT_TYPES } from "../credits/credit-types.js";
import { contextIsRequest } from "../credits/credits-request.js";
import { createCredits } from "../library/index.js";
import { ESTIMATORS } from "../credits/estimators/registry.js";
import { METERS } from "../credits/meters/registry.js";
import { buildBaseSchema } from "../graphql/build-schema.js";
import { formatError as formatAnyError } from "../graphql/format-error.js";
import { hidingSchemaHints } from "../graphql/schema-hints.js";
import { largeReadSlotsPlugin } from "../graphql/plugins/large-read-slots.js";
import {
  pageBudgetPlugin,
  refuseHttpSubscriptionsPlugin,
  refuseNulVariablesPlugin,
  requestDocumentChecks,
  refusedDocumentsPlugin,
} from "../graphql/validation/index.js";
import type { RequestContext } from "../graphql/context.js";
import { createHttpServer, GRAPHQL_PATH, type RunningHttpServer, type StopTimings } from "../http/http-server.js";
import { createLogger } from "../observability/logger.js";
import { createObservability, type ObservabilityOptions } from "../observability/observability.js";
import type { OperationProviders } from "../providers/providers.js";
import { SimulatedProviders } from "../providers/simulated/simulated-providers.js";
import { healthRoute } from "./health.js";
import { createContextFactory } from "./request-context.js";
import type { AppServices } from "./services.js";
import type { RateLimitGate } from "../ratelimit/rate-limit-gate.js";
import { createRateLimiting } from "../ratelimit/create-rate-limiting.js";
import { runGrantMaintenance } from "../grants/maintenance.js";
import { createCorsPolicy } from "../http/cors.js";
import { RequestLimiter } from "../http/request-limit.js";
import { requestLimitGate } from "../http/request-limit-gate.js";
import { requireBearer } from "../http/bearer-route.js";
import { normaliseIdsTransformer } from "../graphql/normalise-ids.js";
import { createEdgeMetrics } from "../observability/edge-metrics.js";
import { createLiveBalance } from "../live/live-balance.js";
import { attachLiveSocket, type LiveSocketServer } from "../live/websocket-server.js";
import { CONSOLE_PATH, consoleRoute, schemaHasLiveBalances } from "../console/console-route.js";

export interface CreateAppOptions {
  logger?: Logger;
  providers?: OperationProviders;
  /** An already open database (tests share one); otherwise one is opened from the configuration. */
  database?: DatabaseHandle;
  /** Clock and timings of metrics and alerts (tests inject a fake clock). */
  observability?: ObservabilityOptions;
  /** Clock of idempotency-key expiry and of the recovery pass (tests inject a fake one). */
  clock?: () => Date;
  /** Extra type-graphql resolver classes (the benchmark's baseline fields, plugged in by bench/). */
  resolvers?: Function[];
}

export interface App {
  readonly services: AppServices;
  readonly schema: GraphQLSchema;
  readonly apollo: ApolloServer<RequestContext>;
  readonly http: RunningHttpServer;
  /** Starts listening; resolves to the base URL (GraphQL at `${url}/graphql`). */
  listen(port?: number, host?: string): Promise<string>;
  /**
   * Graceful stop: /health says 503 "stopping" from now on; WebSocket connections close first; the
   * HTTP server keeps serving (with `Connection: close`) until no request has been in flight for a
   * quiet moment or the grace (10 s) has passed, then stops listening, refuses what still arrives
   * (503) and lets the requests running finish (8 s at most; RunningHttpServer.close). Only then
   * does Apollo stop, the credits core write what it queued and refund the holds of calls that
   * outlasted the finish (credits.close()), and (if the app opened it) the database close.
   * `timings` shorten the HTTP stop's periods (tests).
   */
  close(timings?: StopTimings): Promise<void>;
}

export async function createApp(config: Config, options: CreateAppOptions = {}): Promise<App> {
  const logger = options.logger ?? createLogger(config.LOG_LEVEL);
  const database =
    options.database ??
    (await connectDatabase({
      databaseUrl: config.DATABASE_URL,
      poolSize: config.DATABASE_POOL_SIZE,
      pgliteDir: config.PGLITE_DIR,
      logger,
    }));
  const ownsDatabase = !options.database;
  // Extra resolvers (the benchmark's baseline fields, from bench/) join the schema only when passed.
  const baseSchema = buildBaseSchema(options.resolvers ?? []);
  const observability = createObservability(config, { db: database.db, logger }, options.observability);

  // Rate limits (memory, or Redis when REDIS_URL is set): exact under concurrency. A bad @rateLimit fails here, at start.
  const clock = options.clock;
  const edgeMetrics = createEdgeMetrics(observability.metrics.registry);
  const rateLimiting = createRateLimiting({
    onStoreFailure: () => edgeMetrics.rateLimitStoreFailures.inc({ store: config.REDIS_URL ? "redis" : "memory" }),
    config,
    logger,
    schema: baseSchema,
    now: clock ? () => clock().getTime() : undefined,
  });
  const rateLimiter: RateLimitGate = rateLimiting.gate;

  // The first pass that completes also starts the periods of subscriptions on plans this
  // configuration knows and the last one may not have (plans only change with a restart).
  let missingPeriodsStarted = false;
  // Subscriptions whose renewal met a lock held by another session: renewed after the others, pass after pass.
  const lockedRenewals = new Set<string>();
  const grantMaintenancePass = async (signal: AbortSignal): Promise<void> => {
    await runGrantMaintenance({
      db: database.db,
      plans: config.plans,
      logger,
      startMissingPeriods: !missingPeriodsStarted,
      // Renewal takes at most an interval of each pass, so refunds and expiry come round about every interval.
      renewalBudgetMs: config.RECOVERY_INTERVAL,
      // Aborted by close(): a stopping server waits for one renewal transaction, not for a backlog.
      signal,
      lockedRenewals,
    });
    missingPeriodsStarted = true;
  };

  // The credits core, built from its public entry like any host's (docs/library.md). This server's
  // context already carries the credits state (its resolvers share the request's loaders), so it is
  // passed as `request`. Holds and settlements are coalesced into batch statements, the subscription
  // check folded into the hold: one round trip per batch instead of three per call ("Performance").
  const credits = await createCredits<RequestContext>({
    database,
    // Already migrated: by connectDatabase above, or by whoever passed options.database.
    migrate: false,
    creditTypes: CREDIT_TYPES,
    estimators: Object.fromEntries(ESTIMATORS),
    meters: Object.fromEntries(METERS),
    request: contextIsRequest,
    rateLimit: { gate: rateLimiter },
    // The library builds the gate, so that claims record the instance lease its holds are taken under.
    idempotency: {
      ttlMs: config.IDEMPOTENCY_TTL,
      staleAfterMs: config.CHARGE_SETTLE_TIMEOUT,
      maxResultBytes: config.IDEMPOTENCY_MAX_RESULT_BYTES,
    },
    logger,
    observers: observability.observers,
    ledger: { maxBatch: config.CHARGE_BATCH_MAX, maxInFlight: config.CHARGE_BATCH_IN_FLIGHT },
    // Every debit ends settled: refund what crashed processes left pending (at start, then every interval).
    recovery: {
      intervalMs: config.RECOVERY_INTERVAL,
      settleTimeoutMs: config.CHARGE_SETTLE_TIMEOUT,
      batchSize: config.RECOVERY_BATCH_SIZE,
      // Plan renewals and grant expiry ride on the same pass (src/grants/maintenance.ts).
      afterPass: (signal) => grantMaintenancePass(signal),
    },
    // Every hold records this instance's lease, so another instance refunds them soon after it dies.
    lease: { ttlMs: config.INSTANCE_LEASE_TTL },
    clock: options.clock,
  });
  // Ids normalised outermost, so every wrapper and resolver sees lower-case UUIDs.
  const schema = normaliseIdsTransformer(rateLimiting.transform(credits.transform(baseSchema)));
  const meteredFields = [...credits.meteredFields];
  const services: AppServices = {
    config,
    database,
    db: database.db,
    logger,
    providers: options.providers ?? new SimulatedProviders(),
    observer: credits.observer,
    alerts: observability.alerts,
    meteredFields,
    schema,
  };

  const documentChecks = requestDocumentChecks(
    {
      maxTokens: config.MAX_DOCUMENT_TOKENS,
      maxDepth: config.MAX_QUERY_DEPTH,
      maxAliases: config.MAX_ALIASES,
      maxDirectives: config.MAX_DIRECTIVES,
      maxMeteredFields: config.MAX_METERED_FIELDS,
    },
    meteredFields,
  );
  const { validationRules } = documentChecks;
  // creditPreview parses and validates documents with the same limits, so it never prices what a run would refuse.
  services.documentChecks = documentChecks;

  // creditBalanceChanged: the ledger trigger's notifications, fanned out over graphql-ws (attached to
  // the HTTP server below; its drain plugin closes the sockets when Apollo stops).
  const live = createLiveBalance({
    database,
    directUrl: config.DATABASE_DIRECT_URL,
    pushIntervalMs: config.BALANCE_PUSH_INTERVAL,
    logger,
    alerts: observability.alerts,
    registry: observability.metrics.registry,
  });
  services.live = live;
  let liveSocket: LiveSocketServer | undefined;
  /** Set when close() begins: /health answers 503 "stopping" from then on. */
  let stopping = false;

  // In production, graphql's "Did you mean …" hints are cut from every message (schema-hints.ts).
  const formatError = config.NODE_ENV === "production" ? hidingSchemaHints(formatAnyError) : formatAnyError;
  const apollo = new ApolloServer<RequestContext>({
    schema,
    formatError,
    includeStacktraceInErrorResponses: false,
    // The host stops it (main.ts on SIGTERM/SIGINT, through close() below, once the HTTP server has
    // drained). Apollo's own handlers would stop it at the signal, under requests still in flight:
    // they failed with a masked 500 ("received during server shutdown"), and it re-raised the signal.
    stopOnTerminationSignals: false,
    // A document's lexical tokens are limited before graphql builds its tree (MAX_DOCUMENT_TOKENS).
    parseOptions: documentChecks.parseOptions,
    introspection: config.NODE_ENV !== "production",
    // With introspection off, "Did you mean …" hints would still leak the schema's field names.
    hideSchemaDetailsFromClientErrors: config.NODE_ENV === "production",
    // Hostile operations (too deep, too many aliases, directives or metered fields, a root type the
    // schema lacks, NUL in a string) are refused during validation, before anything runs or is charged. Batched HTTP requests stay off
    // (Apollo's default): one request is one operation, one charge collector, one Idempotency-Key.
    validationRules: [...validationRules],
    plugins: [
      // Holds each operation's metered fields together before it runs, settles them once its result
      // is known, writes extensions.credits, and answers errors with their code's HTTP status.
      credits.plugin,
      observability.graphqlPlugin<RequestContext>(),
      // Text with NUL characters is refused before anything runs (PostgreSQL cannot store it).
      refuseNulVariablesPlugin<RequestContext>(),
      // A subscription sent over HTTP is refused (400) before it runs: subscriptions are served over graphql-ws.
      refuseHttpSubscriptionsPlugin<RequestContext>(),
      // Documents refused before graphql validates them: over the document budget (validation is
      // quadratic in repeated fields), or @skip/@include on a subscription's root field (graphql 16's own rule throws).
      refusedDocumentsPlugin<RequestContext>(),
      // Operations asking for more than MAX_PAGE_ITEMS list items in all (e.g. 50 aliases of a ledger
      // page of 1,000) are refused before anything runs: their answers took whole instances down.
      pageBudgetPlugin<RequestContext>(),
      // Each caller's large queries (over LARGE_READ_ITEMS list items) run a couple at a time, so one
      // customer's allowed pages cannot take the event loop from everyone else.
      largeReadSlotsPlugin<RequestContext>(),
      // Apollo installs its cache-control plugin unless told otherwise. Nothing here sets cache hints
      // (every answer depends on the caller and on live balances), and the plugin's per-field hook
      // makes Apollo wrap every resolver of the schema: a cost on every field of every request.
      ApolloServerPluginCacheControlDisabled(),
      { serverWillStart: async () => ({ drainServer: async () => liveSocket?.dispose() }) },
    ],
  });
  try {
    await apollo.start();
    await live.start();
  } catch (err) {
    // Nothing is listening yet: release what was opened so a failed start leaves no Redis client,
    // timer or pool behind.
    await live.close().catch(() => undefined);
    await observability.close().catch(() => undefined);
    await credits.close().catch(() => undefined);
    await rateLimiting.close().catch(() => undefined);
    if (ownsDatabase) await database.close().catch(() => undefined);
    throw err;
  }

  const verify = createTokenVerifier({
    secret: config.JWT_SECRET,
    jwksUrl: config.JWT_JWKS_URL,
    issuer: config.JWT_ISSUER,
    audience: config.JWT_AUDIENCE,
    clockToleranceSeconds: config.JWT_CLOCK_TOLERANCE,
  });
  const contextFactory = createContextFactory(services, verify);
  // REQUEST_LIMIT: one limiter for both transports, so HTTP requests and WebSocket subscribes add up.
  const admitRequest = requestLimitGate(
    new RequestLimiter(config.REQUEST_LIMIT, clock ? () => clock().getTime() : undefined),
    verify,
    `${config.REQUEST_LIMIT.max} requests per ${config.REQUEST_LIMIT.window}`,
    () => edgeMetrics.requestsLimited.inc(),
  );
  const http = createHttpServer({
    apollo,
    context: contextFactory,
    routes: {
      "GET /health": healthRoute(database, rateLimiting.store, () => live.channelState, () => stopping),
      "GET /metrics": requireBearer(config.METRICS_TOKEN, observability.metricsRoute),
    },
    // The console (console/dist, built at start by main.ts) from the same port as the API.
    prefixRoutes: { [CONSOLE_PATH]: consoleRoute({ liveBalances: schemaHasLiveBalances(schema) }) },
    maxBodyBytes: config.MAX_BODY_BYTES,
    logger,
    cors: createCorsPolicy({ origins: config.CORS_ORIGINS, allowLocalhost: config.devMode && config.NODE_ENV !== "production" }),
    admit: admitRequest,
    // The client went away while its calls settled or its response was written: they are refunded.
    delivery: {
      paysForDelivery: (context) => context.charges.paidForDelivery.length > 0,
      undelivered: (context) => credits.responseNotDelivered(context),
    },
  });

  liveSocket = attachLiveSocket({
    httpServer: http.server,
    path: GRAPHQL_PATH,
    schema,
    verify,
    context: contextFactory,
    formatError,
    validationRules,
    parseOptions: documentChecks.parseOptions,
    admit: admitRequest,
    maxSubscriptionsPerCaller: config.LIVE_MAX_SUBSCRIPTIONS_PER_CALLER,
    tokenClockToleranceMs: config.JWT_CLOCK_TOLERANCE * 1000,
    maxBufferedBytes: config.LIVE_MAX_BUFFERED_BYTES,
    maxPayloadBytes: config.MAX_BODY_BYTES,
    production: config.NODE_ENV === "production",
    logger,
    onSlowConsumer: () => live.slowConsumerDropped(),
  });

  return {
    services,
    schema,
    apollo,
    http,
    listen: (port = config.PORT, host = config.HOST) => http.listen(port, host),
    async close(timings: StopTimings = {}) {
      // Before anything else: a balancer checking /health takes this instance out during the grace.
      stopping = true;
      // WebSocket connections never go idle: close them first, or the HTTP server would wait for them.
      await liveSocket?.dispose();
      // Serves every request that reaches it until a quiet moment, or until the grace has passed;
      // then lets the requests running finish. Resolves after them: nothing below closes under one.
      await http.close(timings.graceMs, timings.quietMs, timings.finishMs);
      await apollo.stop();
      // Queued settlements written, this instance's lease ended, and the holds of calls that outlasted
      // the HTTP stop refunded now: a clean stop leaves nothing pending for another instance to recover.
      // Before observability closes, so that what this raises (a failed refund) is still stored.
      await credits.close();
      // Requests are done: stop spike checks, finish storing alerts, give webhook posts a moment.
      await observability.close();
      await live.close();
      await rateLimiting.close();
      if (ownsDatabase) await database.close();
    },
  };
}
