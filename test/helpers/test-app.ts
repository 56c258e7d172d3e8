/**
 * Starts the real server (createApp → HTTP on a free port) for e2e tests, and a small GraphQL client
 * that returns the HTTP status, headers and body.
 */
import { loadConfig, type Config } from "../../src/config/config.js";
import { createApp, type App } from "../../src/app/create-app.js";
import { createLogger } from "../../src/observability/logger.js";
import { mintToken } from "../../src/auth/mint.js";
import { openSubscription } from "../../src/subscriptions/subscription-store.js";
import type { DatabaseHandle } from "../../src/db/database.js";
import type { DestinationStream } from "pino";

export interface GraphQLResponse<T = any> {
  status: number;
  headers: Headers;
  body: { data?: T; errors?: { message: string; path?: string[]; extensions: Record<string, any> }[]; extensions?: Record<string, any> };
}

export interface TestServer {
  app: App;
  url: string;
  config: Config;
  gql<T = any>(query: string, variables?: Record<string, unknown>, options?: { token?: string; headers?: Record<string, string> }): Promise<GraphQLResponse<T>>;
  close(): Promise<void>;
}

export interface TestServerOptions {
  database?: DatabaseHandle;
  env?: Record<string, string>;
  /** Where the server's log lines go (at LOG_LEVEL, which `env` may set), instead of stdout. */
  logDestination?: DestinationStream;
}

/** Starts a server on 127.0.0.1 and a free port. Logs are silent unless TEST_LOG_LEVEL is set. */
export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const config = loadConfig({
    PGLITE_DIR: "memory://",
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "silent",
    NODE_ENV: "test",
    // Load-heavy tests must not meet the per-caller request limit; tests of REQUEST_LIMIT set their own.
    REQUEST_LIMIT: "1000000/1m",
    ...options.env,
  });
  const app = await createApp(config, { database: options.database, logger: createLogger(config.LOG_LEVEL, options.logDestination) });
  const url = await app.listen(0, "127.0.0.1");
  return {
    app,
    url,
    config,
    gql: (query, variables, opts) => postGraphQL(`${url}/graphql`, query, variables, opts),
    close: () => app.close(),
  };
}

export async function postGraphQL<T = any>(
  endpoint: string,
  query: string,
  variables?: Record<string, unknown>,
  options: { token?: string; headers?: Record<string, string> } = {},
): Promise<GraphQLResponse<T>> {
  const headers: Record<string, string> = { "content-type": "application/json", ...(options.headers ?? {}) };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  const res = await fetch(endpoint, { method: "POST", headers, body: JSON.stringify({ query, variables }) });
  const text = await res.text();
  let body: GraphQLResponse<T>["body"];
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`non-JSON response ${res.status}: ${text.slice(0, 200)}`);
  }
  return { status: res.status, headers: res.headers, body };
}

export const userToken = (sub: string) => mintToken({ sub });
export const adminToken = (sub = "test-admin") => mintToken({ sub, admin: true });

/** Opens a subscription for `ownerId` with the given starting credits (GRANT entries). */
export async function fundedSubscription(
  database: DatabaseHandle,
  ownerId: string,
  credits: Partial<Record<"ai" | "leads" | "skiptrace", number>>,
): Promise<string> {
  const subscription = await openSubscription(database.db, {
    ownerId,
    plan: "test",
    initialCredits: Object.entries(credits).map(([type, amount]) => ({ type, amount: amount as number })),
    actorId: "test-setup",
    requestId: null,
  });
  return subscription.id;
}
