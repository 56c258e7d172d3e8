/**
 * `npm start`: loads the configuration, starts the server, prints the start banner, and stops
 * gracefully on SIGTERM/SIGINT (in-flight requests finish, the pool closes). A database that cannot
 * be opened stops the start with one log line naming DATABASE_URL (or PGLITE_DIR) and the cause, and
 * an address that cannot be listened on with one naming PORT or HOST.
 */
import "reflect-metadata";
import { ConfigError, configWarnings, loadConfig, type Config } from "./config/config.js";
import { databaseStartFailure } from "./config/database-failure.js";
import { listenFailure } from "./config/listen-failure.js";
import { connectDatabase } from "./db/connect.js";
import type { DatabaseHandle } from "./db/database.js";
import { createLogger } from "./observability/logger.js";
import { createApp, type App } from "./app/create-app.js";
import { DEMO_ADMIN_ID, DEMO_USER_ID, ensureDemoSubscription } from "./app/dev-seed.js";
import { mintToken } from "./auth/mint.js";
import { ensureConsoleBuilt } from "./console/build-console.js";
import { readStartArguments } from "./cli/start-arguments.js";

const startArguments = readStartArguments(process.argv.slice(2));
if (!startArguments.run) {
  (startArguments.exitCode === 0 ? console.log : console.error)(startArguments.output);
  process.exit(startArguments.exitCode);
}

let config: Config;
try {
  config = loadConfig();
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(1);
  }
  throw err;
}

const logger = createLogger(config.LOG_LEVEL);
if (config.devMode) {
  logger.warn(
    "DEVELOPMENT MODE: neither JWT_SECRET nor JWT_JWKS_URL is set, so tokens are signed with the public development secret. Never expose this server.",
  );
}
// Values that start but deserve a second look (a settle timeout that makes slow calls free).
for (const warning of configWarnings(config)) logger.warn({ event: warning.event, variable: warning.variable }, warning.message);

// Built before the server listens (never in the request path), so the banner's console links work at once.
if (config.CONSOLE_BUILD === "auto") await ensureConsoleBuilt(logger);

// Opened here, not by createApp, so that a database that cannot be reached or opened stops the start
// with one line naming the variable, its host and port and the cause, instead of a driver's stack.
let database: DatabaseHandle;
try {
  database = await connectDatabase({
    databaseUrl: config.DATABASE_URL,
    poolSize: config.DATABASE_POOL_SIZE,
    pgliteDir: config.PGLITE_DIR,
    logger,
  });
} catch (err) {
  const failure = databaseStartFailure({ databaseUrl: config.DATABASE_URL, pgliteDir: config.PGLITE_DIR }, err);
  logger.fatal(
    { event: "start.database_failed", variable: failure.variable, target: failure.target, cause: failure.cause },
    failure.message,
  );
  process.exit(1);
}

let app: App;
try {
  app = await createApp(config, { logger, database });
} catch (err) {
  await database.close().catch(() => undefined);
  throw err;
}
let url: string;
try {
  url = await app.listen();
} catch (err) {
  const failure = listenFailure({ port: config.PORT, host: config.HOST }, err);
  logger.fatal({ event: "start.listen_failed", variable: failure.variable, cause: failure.cause }, failure.message);
  await app.close().catch(() => undefined);
  await database.close().catch(() => undefined);
  process.exit(1);
}

if (config.devMode) {
  const subscriptionId = await ensureDemoSubscription(app.services.db);
  const userToken = await mintToken({ sub: DEMO_USER_ID });
  const adminToken = await mintToken({ sub: DEMO_ADMIN_ID, admin: true });
  // Printed, not logged: the banner is for the person at the terminal, and the log redacts tokens.
  console.log(
    [
      "",
      "  ┌─ graphql-credits (development mode) ───────────────────────────────",
      `  │ GraphQL:       ${url}/graphql`,
      `  │ Health:        ${url}/health`,
      `  │ Database:      ${app.services.database.kind}${config.DATABASE_URL ? "" : ` (${config.PGLITE_DIR})`}`,
      `  │ Demo subscription: ${subscriptionId ?? "(none: the database already has other subscriptions)"}`,
      `  │ User token  (${DEMO_USER_ID}):  ${userToken}`,
      `  │ Admin token (${DEMO_ADMIN_ID}): ${adminToken}`,
      `  │ Console (user):  ${url}/console#token=${userToken}`,
      `  │ Console (admin): ${url}/console#token=${adminToken}`,
      "  │ Mint more:     npm run token -- --sub <user id> [--admin]",
      "  └─────────────────────────────────────────────────────────────────────",
      "",
    ].join("\n"),
  );
}

// Logged last, once the banner is out: scripts and tests wait for this line.
logger.info({ url: `${url}/graphql`, database: app.services.database.kind }, "graphql-credits listening");

/**
 * The longest a stop may take once signalled: the HTTP drain (18 s at most: the 10 s grace, then up
 * to 8 s for the requests still running; src/http/http-server.ts), then the steps that wait on the
 * database (queued settlements, the lease's end, the last recovery pass, alerts stored). A database
 * that stops answering without closing its connections (a silent network partition) held those steps
 * for as long as it lasted: an outside audit saw a stopped server alive for over 3 minutes, and the
 * settlements it wrote when the network healed charged calls whose clients it had cut off at the
 * grace. Past the deadline the process exits with 1 and leaves what it holds to the recovery pass
 * of the next instance, once its lease expires, as after a crash: those holds are refunded whole.
 * 25 s: within the 30 s an orchestrator (Kubernetes' default) waits before SIGKILL, so the log says why.
 */
const STOP_DEADLINE_MS = 25_000;

/** Exits with 1 when the stop has not finished by the deadline (it is never cleared: exit ends it). */
function exitAtStopDeadline(): void {
  setTimeout(() => {
    logger.error(
      { event: "stop.deadline_passed", deadlineMs: STOP_DEADLINE_MS },
      `the stop did not finish within ${STOP_DEADLINE_MS / 1000} s of the signal (is the database answering?): exiting; the holds left open are refunded by the next instance's recovery pass once this instance's lease expires`,
    );
    process.exit(1);
  }, STOP_DEADLINE_MS);
}

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, "shutting down: finishing in-flight requests");
  exitAtStopDeadline();
  try {
    await app.close();
    await database.close();
    logger.info("stopped");
    process.exit(0);
  } catch (err) {
    logger.error({ err }, "shutdown failed");
    process.exit(1);
  }
}
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));
