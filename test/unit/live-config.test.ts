/** The live-balance and webhook settings: defaults, checks, and the production rule for webhook signing. */
import pino from "pino";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config/config.js";
import type { Database } from "../../src/db/database.js";
import { createObservability } from "../../src/observability/observability.js";

describe("live-balance settings", () => {
  it("defaults BALANCE_PUSH_INTERVAL to 100 ms and DATABASE_DIRECT_URL to unset (DATABASE_URL is used)", () => {
    const config = loadConfig({});
    expect(config.BALANCE_PUSH_INTERVAL).toBe(100);
    expect(config.DATABASE_DIRECT_URL).toBeUndefined();
    expect(config.LIVE_MAX_BUFFERED_BYTES).toBe(1_000_000);
    expect(loadConfig({ BALANCE_PUSH_INTERVAL: "250ms", DATABASE_DIRECT_URL: "postgres://db:5432/x" })).toMatchObject({
      BALANCE_PUSH_INTERVAL: 250,
      DATABASE_DIRECT_URL: "postgres://db:5432/x",
    });
  });

  it("names a bad DATABASE_DIRECT_URL or BALANCE_PUSH_INTERVAL", () => {
    expect(() => loadConfig({ DATABASE_DIRECT_URL: "mysql://x" })).toThrow(/DATABASE_DIRECT_URL must start with postgres/);
    expect(() => loadConfig({ BALANCE_PUSH_INTERVAL: "soon" })).toThrow(ConfigError);
  });

  it("refuses an unsigned alert webhook in production, and only warns in development", () => {
    const deps = { db: {} as Database, logger: pino({ level: "silent" }) };
    const unsigned = { ALERT_WEBHOOK_URL: "https://hooks.example.test/alerts", JWT_SECRET: "x".repeat(40) };
    // Refused by the configuration, as every other bad setting: "Invalid configuration" naming the
    // variable, not an Error thrown later with a stack.
    expect(() => loadConfig({ ...unsigned, NODE_ENV: "production" })).toThrow(ConfigError);
    expect(() => loadConfig({ ...unsigned, NODE_ENV: "production" })).toThrow(
      /^Invalid configuration:\n {2}ALERT_WEBHOOK_SECRET: required with ALERT_WEBHOOK_URL and NODE_ENV=production/,
    );
    expect(() => createObservability(loadConfig({ ...unsigned, NODE_ENV: "production", ALERT_WEBHOOK_SECRET: "s" }), deps)).not.toThrow();
    expect(() => createObservability(loadConfig(unsigned), deps)).not.toThrow();
  });
});
