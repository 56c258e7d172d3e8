/**
 * Vitest global setup: builds the console once before any test file runs, when console/dist is
 * missing or stale, so the servers the tests start (many, some in parallel, through src/main.ts)
 * find a fresh build and none of them builds it again.
 */
import { ensureConsoleBuilt } from "../../src/console/build-console.js";
import { createLogger } from "../../src/observability/logger.js";

export default async function buildConsoleOnce(): Promise<void> {
  const logger = createLogger(process.env.TEST_LOG_LEVEL === "silent" ? "silent" : "warn");
  const ok = await ensureConsoleBuilt(logger);
  // Not fatal here: the tests of the console fail by themselves, saying what is missing.
  if (!ok) console.warn("the console did not build; the browser tests will fail");
}
