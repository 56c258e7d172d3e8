/**
 * Configuration: parsed once at start into a frozen object. Nothing else in the code base reads
 * process.env; every setting has a name, a default and a clear error when its value is wrong.
 */
import { z } from "zod";
import { MAX_DURATION_DAYS, MAX_DURATION_MS, MAX_TIMER_MS, parseDurationMs } from "./duration.js";
import { DEFAULT_CLOCK_TOLERANCE_SECONDS } from "../auth/clock-tolerance.js";
import { loadPlans, PlanConfigError, type PlanDefinition } from "../plans/plan-config.js";

/** The shortest value a duration may have, as written ("1s"), and why a shorter one makes the server useless. */
interface ShortestDuration {
  text: string;
  why: string;
}

/**
 * A duration ("30s", "5m", "24h"). One that drives a Node timer (`timer`) is at most MAX_TIMER_MS,
 * since a longer one fires at once; one only compared in the database or in date arithmetic at most
 * 100 years. `shortest`, when given, refuses a value too short to be of use.
 */
const duration = (name: string, fallback: string, bounds: { timer?: boolean; shortest?: ShortestDuration } = {}) =>
  z
    .string()
    .default(fallback)
    .transform((text, ctx) => {
      const ms = parseDurationMs(text);
      const problem =
        ms === undefined
          ? `${name} must be a duration such as "30s", "5m" or "24h"`
          : durationBoundProblem(name, text, ms, bounds.timer === true, bounds.shortest);
      if (problem !== undefined || ms === undefined) {
        ctx.addIssue({ code: "custom", message: problem });
        return z.NEVER;
      }
      return ms;
    });

function durationBoundProblem(name: string, text: string, ms: number, timer: boolean, shortest: ShortestDuration | undefined): string | undefined {
  const given = `${name} ${JSON.stringify(text)}`;
  if (timer && ms > MAX_TIMER_MS) {
    return `${given} is longer than a Node timer can wait: give at most 24d (${MAX_TIMER_MS}ms, about 24.8 days)`;
  }
  if (ms > MAX_DURATION_MS) return `${given} is longer than 100 years: give at most ${MAX_DURATION_DAYS}d`;
  if (shortest && ms < parseDurationMs(shortest.text)!) return `${given} is too short: give at least ${shortest.text} (${shortest.why})`;
  return undefined;
}

/** Below this CHARGE_SETTLE_TIMEOUT is allowed but warned of at start (configWarnings). */
const SHORT_SETTLE_TIMEOUT_MS = 60_000;

const flag = z
  .enum(["1", "0", "true", "false", ""])
  .default("0")
  .transform((v) => v === "1" || v === "true");

const optionalText = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === "" ? undefined : v.trim()));

/**
 * A setting that is unset or has a value, never empty: an empty PLANS or PLANS_FILE (`PLANS=` in a
 * deployment file) was taken for "no plans", and every subscription on a plan lost its periods and
 * its plan credits at their end, with one info line (an outside audit), while `[]` or a file holding
 * nothing were refused.
 */
const setOrUnset = (name: string, what: string) =>
  z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined) return undefined;
      if (value.trim() === "") {
        ctx.addIssue({ code: "custom", message: `${name} is set but empty: ${what}, or unset ${name}` });
        return z.NEVER;
      }
      return value.trim();
    });

/** "60/1m" → { max: 60, windowMs: 60000, window: "1m" } */
const rateLimitSpec = (name = "RATE_LIMIT_DEFAULT", fallback = "60/1m") => z
  .string()
  .default(fallback)
  .transform((text, ctx) => {
    const match = /^\s*(\d+)\s*\/\s*(\S+)\s*$/.exec(text);
    const windowMs = match ? parseDurationMs(match[2]) : undefined;
    if (!match || windowMs === undefined || Number(match[1]) < 1) {
      ctx.addIssue({ code: "custom", message: `${name} must look like "60/1m" (calls per window)` });
      return z.NEVER;
    }
    // Bounded like every other duration: a window of 10^20 days made Retry-After "8.64e+24", which
    // is not a number of seconds HTTP allows (digits only).
    const tooLong = durationBoundProblem(`${name}'s window`, match[2], windowMs, false, undefined);
    if (tooLong !== undefined) {
      ctx.addIssue({ code: "custom", message: tooLong });
      return z.NEVER;
    }
    return { max: Number(match[1]), window: match[2], windowMs };
  });

/** "*" → "*"; "https://a.example, http://localhost:5173" → the list (trailing slashes dropped); unset → []. */
const corsOrigins = optionalText.transform((text, ctx): readonly string[] | "*" => {
  if (text === undefined) return [];
  if (text === "*") return "*";
  const origins = text.split(",").map((o) => o.trim().replace(/\/+$/, "")).filter((o) => o.length > 0);
  for (const origin of origins) {
    if (!/^https?:\/\/[^/\s]+$/.test(origin)) {
      ctx.addIssue({ code: "custom", message: `CORS_ORIGINS: "${origin}" is not an origin such as https://app.example.com (or use "*")` });
      return z.NEVER;
    }
  }
  return origins;
});

/** An http: or https: URL (a webhook, a key set): other schemes (ftp:, file:) would be accepted by z.url and fail later. */
const httpUrl = (name: string) =>
  optionalText.pipe(z.url({ protocol: /^https?$/, message: `${name} must be an http:// or https:// URL` }).optional());

/**
 * The ports fetch refuses to connect to (the Fetch standard's "bad port" list, as undici applies it):
 * a webhook there failed every post with "fetch failed (bad port)" (an outside audit).
 */
const FETCH_BAD_PORTS = new Set([
  1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101, 102, 103, 104, 109, 110, 111, 113, 115,
  117, 119, 123, 135, 137, 139, 143, 161, 179, 389, 427, 465, 512, 513, 514, 515, 526, 530, 531, 532, 540, 548, 554, 556, 563, 587,
  601, 636, 989, 990, 993, 995, 1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060, 5061, 6000, 6566, 6665, 6666, 6667, 6668, 6669,
  6679, 6697, 10080,
]);

/**
 * ALERT_WEBHOOK_URL: an http(s) URL without a user name or password, on a port fetch connects to. fetch refuses a URL with
 * credentials in it ("Request cannot be constructed from a URL that includes credentials"), so every
 * post would fail; the problem names the variable but never repeats its value, password and all.
 */
const webhookUrl = httpUrl("ALERT_WEBHOOK_URL").refine(
  // A value that is no URL at all is already refused by httpUrl (zod runs this check all the same).
  (url) => url === undefined || !URL.canParse(url) || (new URL(url).username === "" && new URL(url).password === ""),
  {
    message:
      "ALERT_WEBHOOK_URL must not carry a user name or password (user:password@host): fetch does not send credentials from a URL and refuses every post to it; put the receiver's secret in the path or query, or have it check the signatures ALERT_WEBHOOK_SECRET adds",
  },
).refine((url) => url === undefined || !URL.canParse(url) || !FETCH_BAD_PORTS.has(Number(new URL(url).port)), {
  message:
    "ALERT_WEBHOOK_URL's port is one fetch never connects to (a port of another protocol, such as 6667 or 10080, on the Fetch standard's list of bad ports): every post would fail; give the receiver another port",
});

/**
 * PGlite's data directory: a path, "file://<path>" or "memory://". An empty one (`PGLITE_DIR=`) is
 * refused here rather than failing at start as `mkdir ''`.
 */
const pgliteDir = z
  .string()
  .default("./.data/pglite")
  .refine((dir) => dir.trim() !== "" && dir.trim() !== "file://", {
    message: 'PGLITE_DIR must be a directory path (or "memory://" to keep nothing), not empty',
  });

const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);

/** Most JWT_CLOCK_TOLERANCE accepted: a larger leeway would keep expired tokens working for minutes. */
export const MAX_JWT_CLOCK_TOLERANCE_SECONDS = 300;

/** A whole number of seconds from 0 to `max`; empty is unset (the default). "1.5", "-1", "30s" are refused by name. */
const wholeSeconds = (name: string, fallback: number, max: number) =>
  optionalText.transform((text, ctx) => {
    if (text === undefined) return fallback;
    if (!/^\d+$/.test(text) || Number(text) > max) {
      ctx.addIssue({ code: "custom", message: `${name} must be a whole number of seconds from 0 to ${max}, such as 30` });
      return z.NEVER;
    }
    return Number(text);
  });

/**
 * SIMULATE_SLOW_MS: a whole number of milliseconds the simulated provider waits, on a timer, so at
 * most MAX_TIMER_MS (beyond it the wait would end at once). Empty is unset (the default).
 */
const timerMilliseconds = (name: string, fallback: number) =>
  optionalText.transform((text, ctx) => {
    if (text === undefined) return fallback;
    if (!/^\d+$/.test(text) || Number(text) > MAX_TIMER_MS) {
      ctx.addIssue({
        code: "custom",
        message: `${name} must be a whole number of milliseconds from 0 to ${MAX_TIMER_MS} (about 24.8 days, the longest a Node timer waits)`,
      });
      return z.NEVER;
    }
    return Number(text);
  });

/**
 * PORT: digits only, 0 (any free port, as tests use) to 65535. A number coercion read "0x1018" as
 * 4120, "1e3" as 1000 and "" as 0, so an empty PORT listened on a random port instead of 4000.
 */
const port = z
  .string()
  .optional()
  .transform((text, ctx) => {
    if (text === undefined) return 4000;
    const digits = text.trim();
    if (digits === "") {
      ctx.addIssue({ code: "custom", message: "PORT is empty: unset it for the default 4000, or give a port number from 0 to 65535 (0: any free port)" });
      return z.NEVER;
    }
    if (!/^\d+$/.test(digits) || Number(digits) > 65535) {
      ctx.addIssue({ code: "custom", message: `PORT ${JSON.stringify(text)} must be a port number from 0 to 65535, in digits (0: any free port)` });
      return z.NEVER;
    }
    return Number(digits);
  });

/** HOST: an empty one listened on every interface but printed "http://:4000/graphql". */
const host = z
  .string()
  .default("0.0.0.0")
  .refine((text) => text.trim() !== "", { message: "HOST is empty: unset it for 0.0.0.0 (every interface), or give an address such as 127.0.0.1" });

export const configSchema = z.object({
  NODE_ENV: z.enum(["development", "production", "test"]).default("development"),
  PORT: port,
  HOST: host,
  DATABASE_URL: optionalText.pipe(
    z.string().regex(/^postgres(ql)?:\/\//, "DATABASE_URL must start with postgres:// or postgresql://").optional(),
  ),
  DATABASE_POOL_SIZE: positiveInt(10),
  /**
   * The longest one report (creditUsage, creditStats) may run before the database cancels it; ledgerAudit
   * gets ten times as long (src/db/report-gate.ts). Reports also wait at most this long for one of their
   * slots (a quarter of DATABASE_POOL_SIZE).
   */
  // A report waits for its slot on a timer of this length.
  REPORT_QUERY_TIMEOUT: duration("REPORT_QUERY_TIMEOUT", "30s", { timer: true }),
  /**
   * A direct (session) connection for LISTEN, which a transaction-mode pooler cannot carry (Supabase:
   * the direct port 5432, not the pooler's 6543); DATABASE_URL when unset.
   */
  DATABASE_DIRECT_URL: optionalText.pipe(
    z.string().regex(/^postgres(ql)?:\/\//, "DATABASE_DIRECT_URL must start with postgres:// or postgresql://").optional(),
  ),
  PGLITE_DIR: pgliteDir,
  JWT_SECRET: optionalText,
  JWT_JWKS_URL: httpUrl("JWT_JWKS_URL"),
  JWT_ISSUER: optionalText,
  JWT_AUDIENCE: optionalText,
  /** Leeway, in seconds, for a token's exp, nbf and iat against this server's clock. */
  JWT_CLOCK_TOLERANCE: wholeSeconds("JWT_CLOCK_TOLERANCE", DEFAULT_CLOCK_TOLERANCE_SECONDS, MAX_JWT_CLOCK_TOLERANCE_SECONDS),
  REDIS_URL: optionalText.pipe(
    z.string().regex(/^rediss?:\/\//, "REDIS_URL must start with redis:// or rediss://").optional(),
  ),
  RATE_LIMIT_DEFAULT: rateLimitSpec(),
  RATE_LIMIT_ON_STORE_ERROR: z.enum(["closed", "open"]).default("closed"),
  /** Prefix of every rate-limit key in Redis, so several deployments (or test runs) can share one Redis. */
  RATE_LIMIT_KEY_PREFIX: z.string().default("gc:rl:"),
  /** How long one rate-limit check may wait for Redis before it counts as a store error. */
  RATE_LIMIT_STORE_TIMEOUT: duration("RATE_LIMIT_STORE_TIMEOUT", "500ms", { timer: true }),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  SIMULATE_FAILURES: flag,
  SIMULATE_SLOW_MS: timerMilliseconds("SIMULATE_SLOW_MS", 3000),
  /** Only compared in the database (a key's expiry): no timer, so longer than 24.8 days is fine. */
  IDEMPOTENCY_TTL: duration("IDEMPOTENCY_TTL", "24h"),
  /** Largest field result (JSON bytes) an Idempotency-Key stores for replay; a larger one is not replayed. */
  IDEMPOTENCY_MAX_RESULT_BYTES: z.coerce.number().int().min(1).default(1_000_000),
  /**
   * The longest a hold may stay open on a live instance; refunded then, with an alert. Only compared
   * in the database (no timer). Under a second every call slower than a recovery pass would be free;
   * under a minute it is allowed but warned of (configWarnings).
   */
  CHARGE_SETTLE_TIMEOUT: duration("CHARGE_SETTLE_TIMEOUT", "1h", {
    shortest: { text: "1s", why: "a call running longer is refunded and not charged" },
  }),
  /** The recovery pass's timer; a pass every millisecond or so would keep the database busy with nothing. */
  RECOVERY_INTERVAL: duration("RECOVERY_INTERVAL", "5s", {
    timer: true,
    shortest: { text: "100ms", why: "the recovery pass runs this often, and shorter keeps the database busy with passes" },
  }),
  /**
   * An instance's lease lasts this long unrenewed (renewed every third of it, on a timer); its holds
   * are refunded once it expires. Under a second the lease lapses between renewals and calls fail.
   */
  INSTANCE_LEASE_TTL: duration("INSTANCE_LEASE_TTL", "15s", {
    timer: true,
    shortest: { text: "1s", why: "the lease is renewed every third of it; shorter, it lapses between renewals and metered calls fail" },
  }),
  /** Unsettled charges the recovery pass reads and refunds per batch. */
  RECOVERY_BATCH_SIZE: positiveInt(100),
  // Windows compared in sums and SQL; the spike check's own timer is a tenth of the window, kept to 1–30 s.
  ALERT_SPIKE_WINDOW: duration("ALERT_SPIKE_WINDOW", "5m"),
  ALERT_SPIKE_FACTOR: z.coerce.number().positive().default(5),
  ALERT_SPIKE_BASELINE: duration("ALERT_SPIKE_BASELINE", "24h"),
  ALERT_SPIKE_MIN_CREDITS: z.coerce.number().int().min(0).default(100),
  ALERT_WEBHOOK_URL: webhookUrl,
  /** Signs every alert webhook (x-credits-signature, HMAC-SHA256); required with ALERT_WEBHOOK_URL in production. */
  ALERT_WEBHOOK_SECRET: optionalText,
  /** creditBalanceChanged: changes of one balance closer together than this are pushed as one event. */
  BALANCE_PUSH_INTERVAL: duration("BALANCE_PUSH_INTERVAL", "100ms", { timer: true }),
  /** A live-balance socket with more than this many bytes unsent is a slow consumer and is closed. */
  LIVE_MAX_BUFFERED_BYTES: positiveInt(1_000_000),
  /** creditBalanceChanged subscriptions one caller may run on one instance, over all its sockets. */
  LIVE_MAX_SUBSCRIPTIONS_PER_CALLER: positiveInt(100),
  MAX_BODY_BYTES: positiveInt(1_000_000),
  // Operation limits, checked when the document is validated, before anything runs (BAD_USER_INPUT).
  MAX_QUERY_DEPTH: positiveInt(12),
  MAX_METERED_FIELDS: positiveInt(20),
  MAX_ALIASES: positiveInt(50),
  MAX_DIRECTIVES: positiveInt(50),
  /** Most debits the charge ledger sends to the database in one statement. */
  CHARGE_BATCH_MAX: positiveInt(100),
  /** Most debit statements the charge ledger runs at once (each holds a pooled connection while it runs). */
  CHARGE_BATCH_IN_FLIGHT: positiveInt(2),
  /** Origins browsers may call from: comma-separated, or "*". Development mode adds http://localhost:* and http://127.0.0.1:*. */
  CORS_ORIGINS: corsOrigins,
  /** Requests per caller (token subject, else client address) and window, refused (429) before parsing. */
  REQUEST_LIMIT: rateLimitSpec("REQUEST_LIMIT", "1200/1m"),
  /** Most lexical tokens in one GraphQL document (graphql's parse maxTokens). */
  MAX_DOCUMENT_TOKENS: positiveInt(10_000),
  /** When set, GET /metrics requires `Authorization: Bearer <METRICS_TOKEN>`. */
  METRICS_TOKEN: optionalText,
  /** Plans as JSON, or PLANS_FILE naming a JSON file (src/plans/plan-config.ts); parsed into `plans`. */
  PLANS: setOrUnset("PLANS", 'give the plans as JSON ("[]" for none)'),
  PLANS_FILE: setOrUnset("PLANS_FILE", "give the path of a JSON file of plans"),
  /** `auto`: `npm start` builds the console (console/dist) when it is missing or stale; `off`: serve what is there. */
  CONSOLE_BUILD: z.enum(["auto", "off"]).default("auto"),
});

type RawConfig = z.infer<typeof configSchema>;

export type Config = Readonly<
  RawConfig & {
    /** True when neither JWT_SECRET nor JWT_JWKS_URL is set: a fixed development secret is used. */
    devMode: boolean;
    /** The plans of PLANS or PLANS_FILE; empty when neither is set. */
    plans: readonly PlanDefinition[];
  }
>;

export class ConfigError extends Error {
  constructor(public readonly problems: string[]) {
    super(`Invalid configuration:\n  ${problems.join("\n  ")}`);
    this.name = "ConfigError";
  }
}

/** Parses an environment (process.env by default) into the frozen configuration, or throws ConfigError naming each bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv | Record<string, string | undefined> = process.env): Config {
  const result = configSchema.safeParse(env);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((issue) => `${issue.path.join(".") || "(root)"}: ${issue.message}`),
    );
  }
  const raw = result.data;
  const problems = productionProblems(raw, env);
  if (problems.length > 0) throw new ConfigError(problems);
  let plans: readonly PlanDefinition[];
  try {
    plans = loadPlans(raw.PLANS, raw.PLANS_FILE);
  } catch (err) {
    if (err instanceof PlanConfigError) throw new ConfigError(err.problems);
    throw err;
  }
  return Object.freeze({ ...raw, devMode: !raw.JWT_SECRET && !raw.JWT_JWKS_URL, plans });
}

/** Shortest JWT_SECRET accepted in production: 256 bits, as HS256 wants (Supabase's secrets are longer). */
export const MIN_PRODUCTION_SECRET_LENGTH = 32;

/**
 * Production never falls back to development mode: its secret is public, so anyone could mint an
 * admin token. Without a real secret or JWKS the process must not start at all.
 */
function productionProblems(raw: RawConfig, env: Record<string, string | undefined>): string[] {
  if (raw.NODE_ENV !== "production") return [];
  const problems: string[] = [];
  // Empty reads as unset, the embedded database: in production more likely a secret that did not
  // arrive (an empty CI or orchestrator variable) than a wish for PGlite: it must be said one way or the other.
  if (env.DATABASE_URL !== undefined && env.DATABASE_URL.trim() === "") {
    problems.push("DATABASE_URL: set but empty with NODE_ENV=production: unset it for the embedded database (PGlite), or give a postgres:// URL");
  }
  if (!raw.JWT_SECRET && !raw.JWT_JWKS_URL) {
    problems.push("JWT_SECRET or JWT_JWKS_URL: one is required with NODE_ENV=production (development mode and its public secret are refused)");
  } else if (raw.JWT_SECRET && raw.JWT_SECRET.length < MIN_PRODUCTION_SECRET_LENGTH) {
    problems.push(`JWT_SECRET: must be at least ${MIN_PRODUCTION_SECRET_LENGTH} characters with NODE_ENV=production`);
  }
  // A receiver cannot tell unsigned alerts from forged ones.
  if (raw.ALERT_WEBHOOK_URL && !raw.ALERT_WEBHOOK_SECRET) {
    problems.push("ALERT_WEBHOOK_SECRET: required with ALERT_WEBHOOK_URL and NODE_ENV=production (alert webhooks are signed with it)");
  }
  return problems;
}

/** A setting that works but is likely a mistake: logged at start as a warning (`event`), naming the variable. */
export interface ConfigWarning {
  event: string;
  variable: string;
  message: string;
}

/** The warnings a start logs for this configuration (src/main.ts logs each at warn). */
export function configWarnings(config: Config): ConfigWarning[] {
  const warnings: ConfigWarning[] = [];
  if (config.CHARGE_SETTLE_TIMEOUT < SHORT_SETTLE_TIMEOUT_MS) {
    const limit = formatMs(config.CHARGE_SETTLE_TIMEOUT);
    warnings.push({
      event: "config.short_settle_timeout",
      variable: "CHARGE_SETTLE_TIMEOUT",
      message:
        `CHARGE_SETTLE_TIMEOUT is ${limit}: the recovery pass refunds holds open longer than that, so calls running longer than ${limit} ` +
        "are refunded and not charged (with a FAILED_TRANSACTION alert); give the longest a call may take, 1h by default",
    });
  }
  if (config.ALERT_WEBHOOK_SECRET && !config.ALERT_WEBHOOK_URL) {
    warnings.push({
      event: "config.webhook_secret_unused",
      variable: "ALERT_WEBHOOK_SECRET",
      message: "ALERT_WEBHOOK_SECRET is set but ALERT_WEBHOOK_URL is not: no alert is posted anywhere; set ALERT_WEBHOOK_URL, or unset the secret",
    });
  }
  return warnings;
}

/** 2000 → "2s", 90000 → "90s", 1500 → "1500ms": a duration as it could be written back into the variable. */
function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}
