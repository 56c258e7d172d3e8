import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/config.js";
import { configProblems } from "../helpers/config-problems.js";


describe("configuration", () => {
  it("has working defaults and is frozen", () => {
    const config = loadConfig({});
    expect(config.DATABASE_URL).toBeUndefined();
    expect(config).toMatchObject({
      PORT: 4000,
      PGLITE_DIR: "./.data/pglite",
      RATE_LIMIT_DEFAULT: { max: 60, window: "1m", windowMs: 60_000 },
      SIMULATE_FAILURES: false,
      IDEMPOTENCY_TTL: 86_400_000,
      CHARGE_SETTLE_TIMEOUT: 3_600_000,
      RECOVERY_INTERVAL: 5_000,
      INSTANCE_LEASE_TTL: 15_000,
      devMode: true,
    });
    expect(Object.isFrozen(config)).toBe(true);
    expect(() => {
      (config as { PORT: number }).PORT = 1;
    }).toThrow();
  });

  it("reads every variable it documents", () => {
    const config = loadConfig({
      PORT: "5000",
      DATABASE_URL: "postgres://u@h:5432/db",
      DATABASE_POOL_SIZE: "7",
      PGLITE_DIR: "memory://",
      JWT_SECRET: "s3cret",
      JWT_ISSUER: "iss",
      JWT_AUDIENCE: "aud",
      REDIS_URL: "redis://127.0.0.1:6379",
      RATE_LIMIT_DEFAULT: "10/30s",
      LOG_LEVEL: "warn",
      SIMULATE_FAILURES: "1",
    });
    expect(config).toMatchObject({
      PORT: 5000,
      DATABASE_URL: "postgres://u@h:5432/db",
      DATABASE_POOL_SIZE: 7,
      PGLITE_DIR: "memory://",
      JWT_SECRET: "s3cret",
      JWT_ISSUER: "iss",
      JWT_AUDIENCE: "aud",
      REDIS_URL: "redis://127.0.0.1:6379",
      RATE_LIMIT_DEFAULT: { max: 10, window: "30s", windowMs: 30_000 },
      LOG_LEVEL: "warn",
      SIMULATE_FAILURES: true,
      devMode: false,
    });
  });

  it("treats empty values as unset", () => {
    expect(loadConfig({ JWT_SECRET: "", DATABASE_URL: " " })).toMatchObject({ JWT_SECRET: undefined, DATABASE_URL: undefined, devMode: true });
  });

  it.each([
    [{ PORT: "abc" }, "PORT"],
    [{ PORT: "70000" }, "PORT"],
    [{ DATABASE_URL: "mysql://x" }, "DATABASE_URL"],
    [{ DATABASE_POOL_SIZE: "0" }, "DATABASE_POOL_SIZE"],
    [{ RATE_LIMIT_DEFAULT: "sixty" }, "RATE_LIMIT_DEFAULT"],
    [{ RATE_LIMIT_DEFAULT: "0/1m" }, "RATE_LIMIT_DEFAULT"],
    [{ LOG_LEVEL: "loud" }, "LOG_LEVEL"],
    [{ SIMULATE_FAILURES: "maybe" }, "SIMULATE_FAILURES"],
    [{ IDEMPOTENCY_TTL: "5 parsecs" }, "IDEMPOTENCY_TTL"],
    [{ JWT_JWKS_URL: "not a url" }, "JWT_JWKS_URL"],
    [{ REDIS_URL: "http://x" }, "REDIS_URL"],
  ])("refuses %o naming the variable", (env, name) => {
    const problems = configProblems(env as Record<string, string>);
    expect(problems).toHaveLength(1);
    expect(problems[0].startsWith(`${name}:`)).toBe(true);
  });

  // An outside audit: PLANS= (set, empty) was taken for "no plans", and every plan subscription's
  // periods closed at their end, its plan credits expiring, with one info line.
  it.each([
    ["PLANS", "", 'PLANS: PLANS is set but empty: give the plans as JSON ("[]" for none), or unset PLANS'],
    ["PLANS", "  ", 'PLANS: PLANS is set but empty: give the plans as JSON ("[]" for none), or unset PLANS'],
    ["PLANS_FILE", "", "PLANS_FILE: PLANS_FILE is set but empty: give the path of a JSON file of plans, or unset PLANS_FILE"],
  ])("refuses %s set to %o", (name, value, problem) => {
    expect(configProblems({ [name]: value })).toEqual([problem]);
  });

  it("takes PLANS of [] as no plans, and no PLANS as none either", () => {
    expect(loadConfig({ PLANS: "[]" }).plans).toEqual([]);
    expect(loadConfig({}).plans).toEqual([]);
  });

  // An outside audit: a window of 10^20 days was taken, and its 429s said Retry-After "8.64e+24".
  it.each([
    ["RATE_LIMIT_DEFAULT", "1/99999999999999999999d"],
    ["REQUEST_LIMIT", "2/36526d"],
  ])("refuses %s with a window longer than 100 years (%s)", (name, value) => {
    const window = value.split("/")[1];
    expect(configProblems({ [name]: value })).toEqual([`${name}: ${name}'s window ${JSON.stringify(window)} is longer than 100 years: give at most 36525d`]);
    expect(loadConfig({ [name]: "5/36525d" })[name as "REQUEST_LIMIT"].windowMs).toBe(36_525 * 86_400_000);
  });

  // An outside audit: PGLITE_DIR='' crashed at start with `ENOENT: mkdir ''` and a stack trace.
  it.each(["", "   ", "file://"])("refuses PGLITE_DIR=%o by name", (dir) => {
    expect(configProblems({ PGLITE_DIR: dir })).toEqual([
      'PGLITE_DIR: PGLITE_DIR must be a directory path (or "memory://" to keep nothing), not empty',
    ]);
  });

  it("takes PGLITE_DIR as a path, a file:// path or memory://", () => {
    for (const dir of ["./.data/x", "/tmp/x", "file:///tmp/x", "memory://"]) expect(loadConfig({ PGLITE_DIR: dir }).PGLITE_DIR).toBe(dir);
  });

  // An outside audit: a webhook on a port fetch never connects to started, then failed every post ("bad port").
  it.each(["http://127.0.0.1:6667/hook", "https://hooks.example:10080/x", "http://hooks.example:25/"])("refuses ALERT_WEBHOOK_URL %s on a port fetch refuses", (url) => {
    expect(configProblems({ ALERT_WEBHOOK_URL: url })[0]).toMatch(/^ALERT_WEBHOOK_URL: ALERT_WEBHOOK_URL's port is one fetch never connects to/);
  });

  it("takes ALERT_WEBHOOK_URL on other ports, the default ones included", () => {
    for (const url of ["http://127.0.0.1:4231/hook", "https://hooks.example/x", "http://hooks.example:8080/"]) expect(configProblems({ ALERT_WEBHOOK_URL: url })).toEqual([]);
  });

  // An outside audit: ftp: URLs were accepted for both while "not a url" was refused.
  it.each([
    ["ALERT_WEBHOOK_URL", "ftp://x/y"],
    ["ALERT_WEBHOOK_URL", "file:///etc/passwd"],
    ["ALERT_WEBHOOK_URL", "not a url"],
    ["JWT_JWKS_URL", "ftp://id.example/jwks.json"],
    ["JWT_JWKS_URL", "ws://id.example/jwks.json"],
    ["JWT_JWKS_URL", "not a url"],
  ])("accepts only http: and https: for %s (refuses %o)", (name, value) => {
    expect(configProblems({ [name]: value })).toEqual([`${name}: ${name} must be an http:// or https:// URL`]);
  });

  it("accepts http: and https: URLs for ALERT_WEBHOOK_URL and JWT_JWKS_URL", () => {
    const config = loadConfig({ ALERT_WEBHOOK_URL: "http://hooks.internal:8080/alerts", JWT_JWKS_URL: "https://id.example/.well-known/jwks.json" });
    expect(config).toMatchObject({ ALERT_WEBHOOK_URL: "http://hooks.internal:8080/alerts", JWT_JWKS_URL: "https://id.example/.well-known/jwks.json" });
  });

  // An outside audit: a URL with user:password@ was accepted, then fetch refused every post ("Request
  // cannot be constructed from a URL that includes credentials") and the log printed the password.
  it.each([
    "http://hookuser:HookPassSECRET@127.0.0.1:4118/hook?token=QuerySECRET",
    "https://hookuser@hooks.example/alerts",
    "https://:HookPassSECRET@hooks.example/alerts",
  ])("refuses an ALERT_WEBHOOK_URL with a user name or password (%s), without repeating them", (url) => {
    const problems = configProblems({ ALERT_WEBHOOK_URL: url });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^ALERT_WEBHOOK_URL: .*user name or password.*path or query.*ALERT_WEBHOOK_SECRET/);
    expect(problems.join("\n")).not.toMatch(/hookuser|HookPassSECRET|QuerySECRET/);
  });

  it("takes an ALERT_WEBHOOK_URL with a secret in its path or query", () => {
    const url = "https://hooks.example/alerts/T0K3N?token=QuerySECRET";
    expect(loadConfig({ ALERT_WEBHOOK_URL: url }).ALERT_WEBHOOK_URL).toBe(url);
  });

  it("reports every bad variable at once", () => {
    expect(configProblems({ PORT: "x", LOG_LEVEL: "y" }).map((p) => p.split(":")[0]).sort()).toEqual(["LOG_LEVEL", "PORT"]);
  });
});
