/**
 * Every option of createCredits is checked before the database is opened, and a mistaken one (an
 * unknown key, at the top or inside an option object, a wrong type, a value out of range) is refused
 * with an error that names it (docs/library.md, "Options"). The database here is a PostgreSQL URL on
 * a port nothing listens on: a refusal naming the option proves it came before any connection, and
 * a valid configuration gets past the checks to the connection error.
 */
import pino from "pino";
import { beforeAll, describe, expect, it } from "vitest";
import { createCredits, defineEstimator, defineMeter, type ChargeObserver, type CreditsOptions } from "../../src/library/index.js";
import { createLogger } from "../../src/observability/logger.js";
import { closedPort } from "../helpers/closed-port.js";
import { z } from "zod";

let nowhere: string;
beforeAll(async () => {
  nowhere = `postgres://postgres@127.0.0.1:${await closedPort()}/none`;
});

const caller = () => undefined;
const silent = createLogger("silent");

/**
 * What createCredits answers to these options (as a JavaScript host gives them: no type checks) on
 * the database that does not answer: the refusal's message. A start that got past the checks fails
 * on the connection (ECONNREFUSED).
 */
async function answer(options: Record<string, unknown>): Promise<string> {
  try {
    const credits = await createCredits({ database: nowhere, creditTypes: ["ai"], caller, logger: silent, ...options } as unknown as CreditsOptions<object>);
    await credits.close();
    return "started";
  } catch (err) {
    return (err as Error).message;
  }
}

const CONNECTION_REFUSED = /ECONNREFUSED/;

/** Every method of a charge observer, doing nothing. */
const observer = (): ChargeObserver => ({
  charged() {},
  settled() {},
  meterFailed() {},
  refunded() {},
  refused() {},
  estimatorFallback() {},
  transactionFailed() {},
  actualCostMismatch() {},
  lateSettlement() {},
});

describe("createCredits' option keys", () => {
  it("refuses an unknown option, suggesting the known one it is close to", async () => {
    const message = await answer({ estimator: { perItem: () => 1 } });
    expect(message).toMatch(/^createCredits: unknown option `estimator`/);
    expect(message).toMatch(/did you mean `estimators`\?/);
    expect(await answer({ creditType: ["ai"] })).toMatch(/unknown option `creditType`.*did you mean `creditTypes`\?/);
    expect(await answer({ rateLimits: false })).toMatch(/unknown option `rateLimits`.*did you mean `rateLimit`\?/);
    expect(await answer({ Logger: silent })).toMatch(/unknown option `Logger`.*did you mean `logger`\?/);
    // Far from every known option: the known ones are listed.
    const far = await answer({ banana: 1 });
    expect(far).toMatch(/unknown option `banana`/);
    expect(far).toMatch(/creditTypes/);
    expect(far).not.toMatch(/did you mean/);
  });

  it("refuses an unknown key inside an option object, naming its path", async () => {
    expect(await answer({ idempotency: { ttl: 1000 } })).toMatch(/`idempotency\.ttl`.*did you mean `ttlMs`\?/);
    expect(await answer({ rateLimit: { defualt: "1/1s" } })).toMatch(/`rateLimit\.defualt`.*did you mean `default`\?/);
    expect(await answer({ recovery: { interval: 50 } })).toMatch(/`recovery\.interval`.*did you mean `intervalMs`\?/);
    expect(await answer({ lease: { ttl: 5000 } })).toMatch(/`lease\.ttl`.*did you mean `ttlMs`\?/);
    expect(await answer({ ledger: { batchMax: 5 } })).toMatch(/`ledger\.batchMax`/);
    expect(await answer({ creditTypes: [{ name: "ai", desc: "AI" }] })).toMatch(/`creditTypes\[0\]\.desc`.*did you mean `description`\?/);
    // A gate replaces the settings: settings given beside it would be ignored.
    const gate = { checkMetered: async () => undefined };
    expect(await answer({ rateLimit: { gate, default: "1/1s" } })).toMatch(/`rateLimit\.default`.*\{ gate \}/);
  });
});

describe("createCredits' option values", () => {
  it("refuses a logger that is not a pino logger, naming `logger`", async () => {
    for (const logger of ["x", 5, null, {}, console, { child: () => undefined, info: "no" }]) {
      expect(await answer({ logger })).toMatch(/^createCredits: `logger` .*pino/);
    }
    expect(await answer({ logger: {} })).toMatch(/child/);
  });

  it("refuses duplicate credit types, naming the type", async () => {
    expect(await answer({ creditTypes: ["ai", "ai"] })).toMatch(/createCredits: `creditTypes` names "ai" twice/);
    expect(await answer({ creditTypes: ["ai", { name: "ai", description: "again" }] })).toMatch(/"ai" twice/);
    expect(await answer({ creditTypes: [{ name: "ai", description: 5 }] })).toMatch(/creditTypes\[0\]\.description/);
  });

  it("refuses an idempotency ttl that is not a positive number of milliseconds", async () => {
    for (const ttlMs of [-5, 0, Number.NaN, Number.POSITIVE_INFINITY, "24h", 1e300]) {
      expect(await answer({ idempotency: { ttlMs } })).toMatch(/^createCredits: `idempotency\.ttlMs` is /);
    }
    expect(await answer({ idempotency: { staleAfterMs: -1 } })).toMatch(/`idempotency\.staleAfterMs`/);
    expect(await answer({ idempotency: { maxResultBytes: 0 } })).toMatch(/`idempotency\.maxResultBytes`/);
    expect(await answer({ idempotency: { maxResultBytes: 1.5 } })).toMatch(/`idempotency\.maxResultBytes`/);
    expect(await answer({ idempotency: true })).toMatch(/`idempotency` is true/);
    expect(await answer({ idempotency: { gate: {} } })).toMatch(/`idempotency\.gate`.*begin/);
  });

  it("refuses a mistaken rateLimit", async () => {
    expect(await answer({ rateLimit: { default: "abc" } })).toMatch(/createCredits: rateLimit\.default "abc" is not/);
    expect(await answer({ rateLimit: { default: 60 } })).toMatch(/`rateLimit\.default` is 60/);
    expect(await answer({ rateLimit: "60/1m" })).toMatch(/`rateLimit` is "60\/1m".*\{ default: "60\/1m" \}/);
    expect(await answer({ rateLimit: true })).toMatch(/`rateLimit` is true/);
    expect(await answer({ rateLimit: { onStoreError: "fail" } })).toMatch(/`rateLimit\.onStoreError`.*"closed".*"open"/);
    expect(await answer({ rateLimit: { redisUrl: "localhost:6379" } })).toMatch(/`rateLimit\.redisUrl`.*redis:\/\//);
    expect(await answer({ rateLimit: { redisUrl: "redis://:secret@cache:6379", keyPrefix: 5 } })).toMatch(/`rateLimit\.keyPrefix`/);
    expect(await answer({ rateLimit: { redisUrl: "http://user:secret@cache:6379" } })).not.toMatch(/secret/);
    expect(await answer({ rateLimit: { gate: {} } })).toMatch(/`rateLimit\.gate`.*checkMetered/);
  });

  it("refuses mistaken recovery, lease and ledger settings", async () => {
    expect(await answer({ recovery: true })).toMatch(/`recovery` is true/);
    expect(await answer({ recovery: { intervalMs: 0 } })).toMatch(/`recovery\.intervalMs`/);
    // Beyond a timer's range Node would run the pass every millisecond.
    expect(await answer({ recovery: { intervalMs: 2 ** 31 } })).toMatch(/`recovery\.intervalMs`/);
    expect(await answer({ recovery: { settleTimeoutMs: -1 } })).toMatch(/`recovery\.settleTimeoutMs`/);
    expect(await answer({ recovery: { batchSize: 0 } })).toMatch(/`recovery\.batchSize`/);
    expect(await answer({ recovery: { afterPass: "cleanup" } })).toMatch(/`recovery\.afterPass` .*function/);
    expect(await answer({ lease: { ttlMs: 0 } })).toMatch(/`lease\.ttlMs`/);
    expect(await answer({ lease: 15_000 })).toMatch(/`lease` is 15000/);
    expect(await answer({ ledger: { maxBatch: 0 } })).toMatch(/`ledger\.maxBatch`/);
    expect(await answer({ ledger: { maxInFlight: 1.5 } })).toMatch(/`ledger\.maxInFlight`/);
  });

  it("refuses the other mistaken options, naming each", async () => {
    expect(await answer({ migrate: "no" })).toMatch(/`migrate` is "no"/);
    expect(await answer({ unauthenticatedMessage: 401 })).toMatch(/`unauthenticatedMessage`/);
    expect(await answer({ unauthenticatedMessage: "" })).toMatch(/`unauthenticatedMessage`/);
    expect(await answer({ observers: observer() })).toMatch(/`observers` .*array/);
    expect(await answer({ observers: [null] })).toMatch(/`observers\[0\]`/);
    expect(await answer({ observers: [{ charged() {} }] })).toMatch(/`observers\[0\]` has no settled/);
    expect(await answer({ clock: "now" })).toMatch(/`clock` .*function/);
    expect(await answer({ request: {} })).toMatch(/`request` .*function/);
    expect(await answer({ database: { query: () => undefined } })).toMatch(/`database` .*db/);
    expect(await answer({ database: { db: {}, kind: "mysql", ping: async () => undefined, close: async () => undefined } })).toMatch(/`database\.kind`/);
    expect(await answer({ database: 5 })).toMatch(/`database`/);
  });
});

describe("valid configurations", () => {
  it("get past the checks: every example of docs/library.md and the server's own options", async () => {
    const estimators = { promptSize: ({ prompt, maxTokens }: { prompt: string; maxTokens: number }) => Math.ceil((prompt.length / 4 + maxTokens) / 1000) };
    const meters = { tokensUsed: ({ prompt }: { prompt: string }, result: { tokensUsed: number }) => Math.ceil((prompt.length / 4 + result.tokensUsed) / 1000) };
    const configurations: Record<string, unknown>[] = [
      // "A complete server" and "In TypeScript"
      { creditTypes: ["ai", "search"], estimators, meters, caller: (ctx: { userId?: string }) => (ctx.userId ? { id: ctx.userId, isAdmin: false } : undefined) },
      { creditTypes: ["ai"], caller },
      // Options, one by one
      { migrate: false },
      { migrate: true },
      { creditTypes: [{ name: "ai", description: "AI calls" }, { name: "search" }] },
      { estimators: { full: defineEstimator({ name: "full", description: "d", args: z.object({ n: z.number() }), estimate: ({ n }) => n }) } },
      { meters: { full: defineMeter({ name: "full", description: "d", measure: () => 1 }) } },
      { subscription: () => undefined, requestId: () => "r", clientAddress: () => "a", clientGone: () => false, idempotencyKey: () => undefined },
      { request: async () => ({}) },
      { idempotency: false },
      { idempotency: { ttlMs: 60_000 } },
      { idempotency: { ttlMs: 86_400_000, staleAfterMs: 3_600_000, maxResultBytes: 1_000_000 } },
      { idempotency: { gate: { begin: async () => undefined } } },
      { rateLimit: false },
      { rateLimit: {} },
      { rateLimit: { default: "10/1s" } },
      { rateLimit: { default: false } },
      { rateLimit: { redisUrl: "redis://127.0.0.1:6379", keyPrefix: "credits:rl:", onStoreError: "open" } },
      { rateLimit: { redisUrl: "rediss://cache.example:6380", onStoreError: "closed" } },
      { rateLimit: { gate: { checkMetered: async () => undefined } } },
      { unauthenticatedMessage: "Sign in with your API key" },
      { logger: pino({ level: "silent" }) },
      { logger: undefined },
      { observers: [] },
      { observers: [observer()] },
      { ledger: { maxBatch: 100, maxInFlight: 2 } },
      { recovery: false },
      { recovery: { intervalMs: 50, afterPass: async () => undefined } },
      { recovery: { intervalMs: 5_000, settleTimeoutMs: 3_600_000, batchSize: 100 } },
      { lease: { ttlMs: 15_000 } },
      { clock: () => new Date() },
      { database: "postgresql://postgres@127.0.0.1:1/none" },
    ];
    for (const options of configurations) {
      const message = await answer(options);
      expect({ options: Object.keys(options), message }).toEqual({ options: Object.keys(options), message: expect.stringMatching(CONNECTION_REFUSED) });
    }
  });
});
