/**
 * The server the benchmark measures: the production server (src/main.ts's configuration and app)
 * plus the baseline fields of bench-resolver.ts, plugged in through createApp's options, so product
 * code holds no benchmark switch (DESIGN.md, convention 11).
 */
import "reflect-metadata";
import { loadConfig } from "../src/config/config.js";
import { createApp } from "../src/app/create-app.js";
import { createLogger } from "../src/observability/logger.js";
import { BenchResolver } from "./bench-resolver.js";

const config = loadConfig();
const logger = createLogger(config.LOG_LEVEL);
const app = await createApp(config, { logger, resolvers: [BenchResolver] });
const url = await app.listen();
logger.info({ url: `${url}/graphql`, database: app.services.database.kind }, "graphql-credits (bench) listening");

let stopping = false;
async function shutdown(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await app.close();
  process.exit(0);
}
process.on("SIGTERM", () => void shutdown());
process.on("SIGINT", () => void shutdown());
