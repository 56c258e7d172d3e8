/**
 * Assembles the server: database, schema (type-graphql resolvers → @credits and @rateLimit
 * transformers), Apollo Server with its plugins, and the HTTP layer. Everything the process needs
 * is created here from the configuration, so tests build the real thing the same way main does.
 */
import { ApolloServer } from "@apollo/server";
import type { GraphQLSchema } from "graphql";
import type { Logger } from "pino";
import type { Config } from "../config/config.js";
import { connectDatabase } from "../db/connect.js";
import type { DatabaseHandle } from "../db/database.js";
import { createTokenVerifier } from "../auth/verifier.js";
import { CREDIT_TYPE_NAMES } from "../credits/credit-types.js";
import { ESTIMATORS } from "../credits/estimators/registry.js";
import { creditsDirectiveTransformer, readMeteredFields } from "../credits/credits-directive.js";
import { createChargeWrapper } from "../credits/charge-wrapper.js";
import { composeObservers } from "../credits/charge-observer.js";
import { loggingObserver } from "../credits/logging-observer.js";
import { directChargeLedger } from "../ledger/charge-ledger.js";
import { buildBaseSchema } from "../graphql/build-schema.js";
import { formatError } from "../graphql/format-error.js";
import type { RequestContext } from "../graphql/context.js";
import { creditsExtensionPlugin } from "../graphql/plugins/credits-extension-plugin.js";
import { errorsPlugin } from "../graphql/plugins/errors-plugin.js";
import { createHttpServer, type RunningHttpServer } from "../http/http-server.js";
import { createLogger } from "../observability/logger.js";
import type { OperationProviders } from "../providers/providers.js";
import { SimulatedProviders } from "../providers/simulated/simulated-providers.js";
import { healthRoute } from "./health.js";
import { createContextFactory } from "./request-context.js";
import type { AppServices } from "./services.js";
import type { RateLimitGate } from "../ratelimit/rate-limit-gate.js";

export interface CreateAppOptions {
  logger?: Logger;
  providers?: OperationProviders;
  /** An already open database (tests share one); otherwise one is opened from the configuration. */
  database?: DatabaseHandle;
}

export interface App {
  readonly services: AppServices;
  readonly schema: GraphQLSchema;
  readonly apollo: ApolloServer<RequestContext>;
  readonly http: RunningHttpServer;
  /** Starts listening; resolves to the base URL (GraphQL at `${url}/graphql`). */
  listen(port?: number, host?: string): Promise<string>;
  /** Graceful stop: in-flight requests finish, then Apollo and (if the app opened it) the database close. */
  close(): Promise<void>;
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

  const baseSchema = buildBaseSchema();
  const directiveOptions = { creditTypes: CREDIT_TYPE_NAMES, estimators: ESTIMATORS };
  const meteredFields = readMeteredFields(baseSchema, directiveOptions);

  const observer = composeObservers([loggingObserver(logger)], (err) =>
    logger.error({ err }, "a charge observer failed"),
  );
  const services: AppServices = {
    config,
    database,
    db: database.db,
    logger,
    providers: options.providers ?? new SimulatedProviders(),
    observer,
    meteredFields,
  };

  // TODO(issue 6): replaced by the rate-limit module (memory or Redis store, exact under concurrency).
  const rateLimiter: RateLimitGate = { checkMetered: async () => undefined };

  const wrap = createChargeWrapper({ ledger: directChargeLedger(database.db), rateLimiter, observer });
  const schema = creditsDirectiveTransformer({ ...directiveOptions, wrap })(baseSchema);
  services.schema = schema;

  const apollo = new ApolloServer<RequestContext>({
    schema,
    formatError,
    includeStacktraceInErrorResponses: false,
    introspection: config.NODE_ENV !== "production",
    plugins: [creditsExtensionPlugin(), errorsPlugin()],
  });
  await apollo.start();

  const verify = createTokenVerifier({
    secret: config.JWT_SECRET,
    jwksUrl: config.JWT_JWKS_URL,
    issuer: config.JWT_ISSUER,
    audience: config.JWT_AUDIENCE,
  });
  const http = createHttpServer({
    apollo,
    context: createContextFactory(services, verify),
    routes: { "GET /health": healthRoute(database) },
    maxBodyBytes: config.MAX_BODY_BYTES,
    logger,
  });

  return {
    services,
    schema,
    apollo,
    http,
    listen: (port = config.PORT, host = config.HOST) => http.listen(port, host),
    async close() {
      await http.close();
      await apollo.stop();
      if (ownsDatabase) await database.close();
    },
  };
}
