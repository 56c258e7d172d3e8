/**
 * Bounds of the configuration (README: "a bad value stops the start with a message naming the
 * variable"). An outside audit tried ~250 start configurations and found:
 * - durations that drive a Node timer accepted beyond its range (2^31−1 ms, about 24.8 days), which
 *   then fires at once: RATE_LIMIT_STORE_TIMEOUT=30d made every metered call 429 "Rate limiter
 *   unavailable", BALANCE_PUSH_INTERVAL=30d stopped coalescing, RECOVERY_INTERVAL=30d and
 *   INSTANCE_LEASE_TTL=90d crashed at start with a stack naming `recovery.intervalMs`/`lease.ttlMs`;
 * - lower bounds that make the server useless: INSTANCE_LEASE_TTL=1ms (every metered call 500),
 *   RECOVERY_INTERVAL=1ms (868 passes in 5 s), CHARGE_SETTLE_TIMEOUT=1ms (every call free);
 * - PORT="" listening on a random port, PORT=0x1018 on 4120, HOST="" a malformed URL;
 * - NODE_ENV=production with DATABASE_URL set but empty starting on PGlite without a word.
 */
import { describe, expect, it } from "vitest";
import { configWarnings, loadConfig } from "../../src/config/config.js";
import { configProblems } from "../helpers/config-problems.js";

const TIMER_DRIVEN = ["RATE_LIMIT_STORE_TIMEOUT", "BALANCE_PUSH_INTERVAL", "RECOVERY_INTERVAL", "INSTANCE_LEASE_TTL", "REPORT_QUERY_TIMEOUT"];

describe("durations that drive a timer", () => {
  it.each(TIMER_DRIVEN.flatMap((name) => [[name, "30d"], [name, "25d"], [name, "2147483648ms"]]))(
    "refuses %s=%s, longer than a Node timer waits, by name with the largest value",
    (name, value) => {
      const problems = configProblems({ [name]: value });
      expect(problems).toEqual([`${name}: ${name} ${JSON.stringify(value)} is longer than a Node timer can wait: give at most 24d (2147483647ms, about 24.8 days)`]);
    },
  );

  it.each(TIMER_DRIVEN)("accepts %s up to 2147483647ms (24d included)", (name) => {
    expect(loadConfig({ [name]: "24d" })[name as "RECOVERY_INTERVAL"]).toBe(24 * 86_400_000);
    expect(loadConfig({ [name]: "2147483647ms" })[name as "RECOVERY_INTERVAL"]).toBe(2_147_483_647);
  });

  it("refuses SIMULATE_SLOW_MS beyond a timer's range, and accepts it at the bound", () => {
    expect(configProblems({ SIMULATE_SLOW_MS: "3000000000" })).toEqual([
      "SIMULATE_SLOW_MS: SIMULATE_SLOW_MS must be a whole number of milliseconds from 0 to 2147483647 (about 24.8 days, the longest a Node timer waits)",
    ]);
    expect(loadConfig({ SIMULATE_SLOW_MS: "2147483647" }).SIMULATE_SLOW_MS).toBe(2_147_483_647);
  });
});

describe("durations only compared in SQL", () => {
  it.each(["IDEMPOTENCY_TTL", "CHARGE_SETTLE_TIMEOUT"])("accepts %s longer than a timer waits (they never reach one)", (name) => {
    expect(loadConfig({ [name]: "90d" })[name as "IDEMPOTENCY_TTL"]).toBe(90 * 86_400_000);
  });

  it.each(["IDEMPOTENCY_TTL", "CHARGE_SETTLE_TIMEOUT", "ALERT_SPIKE_WINDOW", "ALERT_SPIKE_BASELINE"])(
    "refuses %s longer than 100 years by name (createCredits refused it with a stack)",
    (name) => {
      expect(configProblems({ [name]: "36526d" })).toEqual([`${name}: ${name} "36526d" is longer than 100 years: give at most 36525d`]);
      expect(configProblems({ [name]: "36525d" })).toEqual([]);
    },
  );
});

describe("lower bounds", () => {
  it.each([
    ["INSTANCE_LEASE_TTL", "1ms", "999ms", "1s"],
    ["RECOVERY_INTERVAL", "1ms", "99ms", "100ms"],
    ["CHARGE_SETTLE_TIMEOUT", "1ms", "999ms", "1s"],
  ])("refuses %s=%s by name, with the shortest value", (name, tiny, justUnder, least) => {
    for (const value of [tiny, justUnder]) {
      const problems = configProblems({ [name]: value });
      expect(problems, value).toHaveLength(1);
      expect(problems[0]).toMatch(new RegExp(`^${name}: ${name} "${value}" is too short: give at least ${least} \\(`));
    }
    expect(configProblems({ [name]: least })).toEqual([]);
  });

  it("accepts the values the tests run with", () => {
    expect(() => loadConfig({ INSTANCE_LEASE_TTL: "2s", RECOVERY_INTERVAL: "300ms", CHARGE_SETTLE_TIMEOUT: "2s" })).not.toThrow();
    expect(() => loadConfig({ INSTANCE_LEASE_TTL: "3s", RECOVERY_INTERVAL: "500ms", BALANCE_PUSH_INTERVAL: "1ms", RATE_LIMIT_STORE_TIMEOUT: "200ms" })).not.toThrow();
  });
});

describe("start warnings", () => {
  it("warns of a CHARGE_SETTLE_TIMEOUT under a minute: longer calls are refunded, not charged", () => {
    const warnings = configWarnings(loadConfig({ CHARGE_SETTLE_TIMEOUT: "2s" }));
    expect(warnings).toEqual([
      {
        event: "config.short_settle_timeout",
        variable: "CHARGE_SETTLE_TIMEOUT",
        message: expect.stringMatching(/^CHARGE_SETTLE_TIMEOUT is 2s: .*calls running longer than 2s are refunded and not charged/),
      },
    ]);
    expect(configWarnings(loadConfig({ CHARGE_SETTLE_TIMEOUT: "1m" }))).toEqual([]);
    expect(configWarnings(loadConfig({}))).toEqual([]);
  });

  it("warns of an ALERT_WEBHOOK_SECRET without ALERT_WEBHOOK_URL: nothing is posted", () => {
    expect(configWarnings(loadConfig({ ALERT_WEBHOOK_SECRET: "s" }))).toEqual([
      { event: "config.webhook_secret_unused", variable: "ALERT_WEBHOOK_SECRET", message: expect.stringMatching(/ALERT_WEBHOOK_URL is not/) },
    ]);
  });
});

describe("PORT and HOST", () => {
  it.each(["", " ", "0x1018", "1e3", "4000.0", "-1", "+80", "65536"])("refuses PORT=%j by name", (port) => {
    const problems = configProblems({ PORT: port });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^PORT: PORT /);
  });

  it("says to unset an empty PORT for 4000", () => {
    expect(configProblems({ PORT: "" })[0]).toMatch(/^PORT: PORT is empty: unset it for the default 4000/);
  });

  it("takes digits from 0 (any free port) to 65535", () => {
    expect(loadConfig({}).PORT).toBe(4000);
    for (const port of ["0", "80", "4000", "65535"]) expect(loadConfig({ PORT: port }).PORT).toBe(Number(port));
  });

  it.each(["", "   "])("refuses HOST=%j by name", (host) => {
    expect(configProblems({ HOST: host })).toEqual([
      "HOST: HOST is empty: unset it for 0.0.0.0 (every interface), or give an address such as 127.0.0.1",
    ]);
  });

  it("keeps HOST as given", () => {
    expect(loadConfig({}).HOST).toBe("0.0.0.0");
    expect(loadConfig({ HOST: "127.0.0.1" }).HOST).toBe("127.0.0.1");
  });
});

describe("DATABASE_URL set but empty", () => {
  const production = { NODE_ENV: "production", JWT_SECRET: "x".repeat(40) };

  it.each(["", "  "])("is refused in production (%j), not PGlite without a word", (url) => {
    expect(configProblems({ ...production, DATABASE_URL: url })).toEqual([
      "DATABASE_URL: set but empty with NODE_ENV=production: unset it for the embedded database (PGlite), or give a postgres:// URL",
    ]);
  });

  it("is unset outside production, as before; unset in production is the embedded database", () => {
    expect(loadConfig({ DATABASE_URL: "" }).DATABASE_URL).toBeUndefined();
    expect(loadConfig(production).DATABASE_URL).toBeUndefined();
  });
});
