/**
 * createCredits: the credits core as a library (DESIGN.md, "Using the credits core in another
 * server"). One factory, generic over the host's context, with typed options; it returns what a host
 * adds to its Apollo Server: the directive's SDL, a schema transform, one plugin, the admin
 * operations as functions, the migrations and close(). This server builds itself from it too.
 */
import type { ApolloServerPlugin } from "@apollo/server";
import type { GraphQLSchema } from "graphql";
import type { Logger } from "pino";
import { z } from "zod";
import { createChargeWrapper } from "../credits/charge-wrapper.js";
import type { ChargeDeps } from "../credits/charge-phases.js";
import { composeObservers, type ChargeObserver } from "../credits/charge-observer.js";
import { CREDITS_DIRECTIVE_SDL, creditsDirectiveTransformer, readMeteredFields } from "../credits/credits-directive.js";
import type { RequestOf } from "../credits/credits-request.js";
import type { Estimator } from "../credits/estimators/estimator.js";
import type { Meter } from "../credits/meters/meter.js";
import type { MeteredField } from "../credits/metered-field.js";
import { loggingObserver } from "../credits/logging-observer.js";
import { createOperationCharges, type OperationCharges } from "../credits/operation-charges.js";
import { connectDatabase } from "../db/connect.js";
import type { DatabaseHandle } from "../db/database.js";
import { createDatabaseIdempotencyGate } from "../idempotency/database-idempotency-gate.js";
import type { IdempotencyGate } from "../idempotency/idempotency-gate.js";
import { createCoalescingChargeLedger } from "../ledger/coalescing-charge-ledger.js";
import type { RateLimitGate } from "../ratelimit/rate-limit-gate.js";
import { RATE_LIMIT_DIRECTIVE_SDL } from "../ratelimit/rate-limit-directive.js";
import { createLogger } from "../observability/logger.js";
import { creditsExtensionPlugin } from "../graphql/plugins/credits-extension-plugin.js";
import { errorsPlugin } from "../graphql/plugins/errors-plugin.js";
import { runRecoveryPass } from "../recovery/recovery-pass.js";
import { startRecoveryScheduler, type RecoveryScheduler } from "../recovery/recovery-scheduler.js";
import { backfillBalances } from "../subscriptions/balance-backfill.js";
import { attachResolvers, type ResolverMap } from "./attach-resolvers.js";
import { composePlugins } from "./compose-plugins.js";
import { formatErrorsPlugin } from "./format-errors-plugin.js";
import { createAdminOperations, type AdminOperations } from "./admin-operations.js";
import { migrateCredits } from "./migrations.js";
import { DEFAULT_UNAUTHENTICATED_MESSAGE, requestStates, type ContextReaders } from "./request-state.js";
import { startInstanceLease, type InstanceLease } from "../recovery/instance-lease.js";
import { addCreditAmountArgument } from "./credit-amount-argument.js";
import { createLibraryRateLimits, type LibraryRateLimits, type RateLimitSettings } from "./rate-limits.js";

/** A credit type: its name, or its name and a description. */
export type CreditTypeOption = string | { name: string; description?: string };
/** An estimator: a function of the field's arguments, or a full Estimator (with a zod schema that validates them). */
export type EstimatorOption = ((args: any) => number) | Estimator;
/** A meter: a function of the field's arguments and its result, or a full Meter. */
export type MeterOption = ((args: any, result: any) => number) | Meter;

export interface CreditsOptions<TContext> extends Partial<ContextReaders<TContext>> {
  /**
   * The database: a PostgreSQL URL ("postgres://…"), a PGlite data directory ("./data", or
   * "memory://" for nothing kept), or an open handle ({ db, kind, ping, close }, see DatabaseHandle).
   * Every one is migrated at start (an open handle unless `migrate: false`); only what createCredits
   * opened itself is closed by close().
   */
  database: string | DatabaseHandle;
  /**
   * Apply the migrations to an open handle (a URL or directory is always migrated). Default true;
   * false when the host migrates it itself (migrateCredits, or drizzle's migrator on the package's drizzle/).
   */
  migrate?: boolean;
  creditTypes: readonly CreditTypeOption[];
  estimators?: Readonly<Record<string, EstimatorOption>>;
  meters?: Readonly<Record<string, MeterOption>>;
  /**
   * For a host whose context already carries the credits state (a CreditsRequest, as this server's
   * does): used instead of the readers (caller, subscription …) and the state kept by the library.
   */
  request?: RequestOf;
  /**
   * Rate limits, per caller (DESIGN.md, "Rate limits"). By default `@rateLimit` is honoured and every
   * @credits field without one gets "60/1m" (the server's RATE_LIMIT_DEFAULT), counted in memory.
   * `{ default: "10/1s" }` changes that default, `{ default: false }` drops it (`@rateLimit` still
   * holds), `redisUrl` shares the counts between instances; `false` turns every limit off; `{ gate }`
   * replaces the limiter of metered fields (then `@rateLimit` on other fields is the host's).
   */
  rateLimit?: false | RateLimitSettings | { gate: RateLimitGate };
  /**
   * Idempotency-Key handling of metered mutations: on by default, keys kept `ttlMs` (24 h). The key is
   * the request's `Idempotency-Key` header, or what `idempotencyKey(ctx)` returns when given.
   */
  idempotency?: false | { ttlMs?: number; staleAfterMs?: number; maxResultBytes?: number } | { gate: IdempotencyGate };
  /**
   * pino logger: one line per hold, settlement, refund and refusal at info, unexpected errors (masked
   * for the client) with their detail at error. Default: JSON lines at "warn" and above to stderr.
   */
  logger?: Logger;
  /** The message of UNAUTHENTICATED when a metered field is called without a caller (say how your clients sign in). */
  unauthenticatedMessage?: string;
  /** Further observers of charge events (metrics, alerts). */
  observers?: ChargeObserver[];
  /** Hold and settlement coalescing (defaults: 100 per statement, 2 statements in flight). */
  ledger?: { maxBatch?: number; maxInFlight?: number };
  /**
   * Refunds of holds a crashed process left unsettled: every `intervalMs` (5 s), the holds of instances
   * whose lease expired, and holds open longer than `settleTimeoutMs` (1 h) on live ones. `afterPass` runs after each pass, even a failed one (a host's own upkeep
   * on the same timer, e.g. this server's grant expiry and plan renewals). `false` turns it off.
   */
  recovery?: false | { intervalMs?: number; settleTimeoutMs?: number; batchSize?: number; afterPass?: () => Promise<unknown> };
  /**
   * This instance's lease (DESIGN.md, "Retries and crashes"): a row renewed every third of `ttlMs`
   * (default 15 s). Every hold records it, and the recovery pass of any instance refunds the holds of
   * an instance whose lease expired, so a crashed server's holds come back within seconds while a
   * long call on a live one is never refunded under it.
   */
  lease?: { ttlMs?: number };
  /** Injectable clock (tests). */
  clock?: () => Date;
}

export interface Credits<TContext extends object> {
  /** `directive @credits(…)` and `directive @rateLimit(…)`: add them to your SDL typeDefs. */
  readonly typeDefs: string;
  /**
   * Wraps every @credits field of the schema (after attaching `resolvers`, for a schema built from SDL
   * with graphql's buildSchema), adds `creditAmount: Int` (the admin's price) to each that lacks it,
   * and limits the fields with `@rateLimit`. Validates each directive now: a bad one throws, naming the field.
   */
  transform(schema: GraphQLSchema, resolvers?: ResolverMap): GraphQLSchema;
  /** The metered fields of the last transformed schema. */
  readonly meteredFields: readonly MeteredField[];
  /** Holds before execution, settles after, writes extensions.credits, formats errors and sets the HTTP status. */
  readonly plugin: ApolloServerPlugin<TContext>;
  /** Subscriptions, grants, adjustments, refunds and balances, as functions. */
  readonly admin: AdminOperations;
  readonly database: DatabaseHandle;
  /** The charge observer (the logger's and `observers`), for a host that reports charges of its own (admin refunds). */
  readonly observer: ChargeObserver;
  /**
   * Tell it when a response whose operation ran never reached the client: its connection closed
   * before the response was written out (for example `res.on("close")` without `res.writableFinished`
   * in node:http or Express). Each call the response paid for is refunded whole, unless an
   * Idempotency-Key kept its result for a retry. The charge path already refunds the calls of a
   * client that went away before settlement (the `clientGone` option); this covers the last
   * milliseconds, while the calls settle and the response is written.
   */
  responseNotDelivered(context: TContext): Promise<void>;
  /** Applies the migrations again (idempotent). */
  migrate(): Promise<void>;
  /** Stops the recovery timer and the rate-limit store; closes the database when it opened it. */
  close(): Promise<void>;
}

/** Notes each HTTP request's headers, before anything reads the request's state, for what the host's context does not carry. */
function noteRequestHeaders<TContext extends object>(headersOf: WeakMap<object, { get(name: string): string | undefined }>): ApolloServerPlugin<TContext> {
  return {
    async requestDidStart({ request, contextValue }) {
      if (request.http) headersOf.set(contextValue, request.http.headers);
    },
  };
}

/** The library's default logger: errors and warnings, as JSON lines on stderr (pass your own pino logger for more). */
function defaultLogger(): Logger {
  return createLogger("warn", process.stderr);
}

/** The longest a hold may stay open on a live instance (a hung call), as CHARGE_SETTLE_TIMEOUT's default. */
const SETTLE_TIMEOUT_MS = 3_600_000;
const LEASE_TTL_MS = 15_000;

function creditTypeNames(types: readonly CreditTypeOption[]): string[] {
  const names = types.map((t) => (typeof t === "string" ? t : t.name));
  if (names.length === 0) throw new Error("createCredits: name at least one credit type");
  return names;
}

function toEstimators(options: Readonly<Record<string, EstimatorOption>> = {}): Map<string, Estimator> {
  return new Map(
    Object.entries(options).map(([name, e]) => [
      name,
      typeof e === "function" ? { name, description: name, args: z.any(), estimate: e } : e,
    ]),
  );
}

function toMeters(options: Readonly<Record<string, MeterOption>> = {}): Map<string, Meter> {
  return new Map(Object.entries(options).map(([name, m]) => [name, typeof m === "function" ? { name, description: name, measure: m } : m]));
}

async function openDatabase(database: string | DatabaseHandle, logger: Logger, migrate: boolean): Promise<{ handle: DatabaseHandle; owned: boolean }> {
  if (database === undefined || database === null || (typeof database !== "string" && typeof database.db !== "object")) {
    throw new Error("createCredits: `database` is a postgres:// URL, a PGlite directory (\"memory://\" keeps nothing) or an open handle { db, kind, ping, close }");
  }
  if (typeof database !== "string") {
    if (migrate) await migrateCredits(database);
    return { handle: database, owned: false };
  }
  const isUrl = /^postgres(ql)?:\/\//.test(database);
  const handle = await connectDatabase(isUrl ? { databaseUrl: database, logger } : { pgliteDir: database, logger });
  return { handle, owned: true };
}

function idempotencyGateOf<T>(options: CreditsOptions<T>, handle: DatabaseHandle, lease: InstanceLease, logger: Logger): IdempotencyGate | undefined {
  const setting = options.idempotency;
  if (setting === false) return undefined;
  if (setting && "gate" in setting) return setting.gate;
  return createDatabaseIdempotencyGate({
    db: handle.db,
    instanceId: () => lease.current(),
    ttlMs: setting?.ttlMs ?? 86_400_000,
    staleAfterMs: setting?.staleAfterMs ?? SETTLE_TIMEOUT_MS,
    maxResultBytes: setting?.maxResultBytes,
    clock: options.clock,
    logger,
  });
}

const NO_RATE_LIMIT: RateLimitGate = { checkMetered: async () => undefined };

export async function createCredits<TContext extends object = Record<string, unknown>>(options: CreditsOptions<TContext>): Promise<Credits<TContext>> {
  const logger = options.logger ?? defaultLogger();
  const creditTypes = creditTypeNames(options.creditTypes);
  const directiveOptions = { creditTypes: new Set(creditTypes), estimators: toEstimators(options.estimators), meters: toMeters(options.meters) };
  if (!options.request && !options.caller) throw new Error("createCredits: say how to find the caller (options.caller)");

  const { handle, owned } = await openDatabase(options.database, logger, options.migrate ?? true);
  // A credit type added since a subscription was opened gets its zero balance now (402 when spent, not 404).
  await backfillBalances(handle.db, creditTypes);
  // The HTTP headers of each request, noted by the plugin when the request starts (Idempotency-Key).
  const headersOf = new WeakMap<object, { get(name: string): string | undefined }>();
  const readsHeaders = !options.request && options.idempotency !== false && !options.idempotencyKey;
  const requestOf: RequestOf =
    options.request ??
    requestStates(options as ContextReaders<TContext>, handle.db, logger, {
      header: (context, name) => headersOf.get(context)?.get(name),
      idempotencyHeader: options.idempotency !== false,
      unauthenticatedMessage: options.unauthenticatedMessage ?? DEFAULT_UNAUTHENTICATED_MESSAGE,
    });
  const observer = composeObservers([loggingObserver(logger), ...(options.observers ?? [])], (err) =>
    logger.error({ err }, "a charge observer failed"),
  );
  const lease = startInstanceLease({ db: handle.db, ttlMs: options.lease?.ttlMs ?? LEASE_TTL_MS, logger });
  const ledger = createCoalescingChargeLedger(handle.db, {
    ...options.ledger,
    instanceId: () => lease.current(),
    leaseExpired: (id) => lease.expired(id),
  });
  const rateLimitOption = options.rateLimit ?? {};
  const rateLimits: LibraryRateLimits | undefined =
    rateLimitOption === false || "gate" in rateLimitOption
      ? undefined
      : createLibraryRateLimits(rateLimitOption, { logger, requestOf, now: options.clock ? () => options.clock!().getTime() : undefined });
  const rateLimiter: RateLimitGate =
    rateLimitOption !== false && "gate" in rateLimitOption ? rateLimitOption.gate : (rateLimits?.gate ?? NO_RATE_LIMIT);
  const deps: ChargeDeps = { ledger, rateLimiter, observer, idempotency: idempotencyGateOf(options, handle, lease, logger) };
  const wrap = createChargeWrapper(deps, requestOf);

  let meteredFields: MeteredField[] = [];
  let charges: OperationCharges | undefined;
  const operationCharges: OperationCharges = {
    holdOperation: (request) => (charges ? charges.holdOperation(request) : Promise.resolve(undefined)),
    settle: (ctx, data) => (charges ? charges.settle(ctx, data) : Promise.resolve()),
    undelivered: (ctx) => (charges ? charges.undelivered(ctx) : Promise.resolve()),
  };

  const recovery: RecoveryScheduler | undefined =
    options.recovery === false
      ? undefined
      : startRecoveryScheduler({
          intervalMs: options.recovery?.intervalMs ?? 5_000,
          logger,
          runPass: async () => {
            try {
              return await runRecoveryPass({
                db: handle.db,
                settleTimeoutMs: options.recovery ? (options.recovery.settleTimeoutMs ?? SETTLE_TIMEOUT_MS) : SETTLE_TIMEOUT_MS,
                batchSize: options.recovery ? options.recovery.batchSize : undefined,
                clock: options.clock,
                logger,
                observer,
              });
            } finally {
              if (options.recovery) await options.recovery.afterPass?.();
            }
          },
        });

  return {
    typeDefs: `${CREDITS_DIRECTIVE_SDL}\n${RATE_LIMIT_DIRECTIVE_SDL}`,
    transform(base, resolvers) {
      const schema = addCreditAmountArgument(resolvers ? attachResolvers(base, resolvers) : base);
      meteredFields = readMeteredFields(schema, directiveOptions);
      charges = createOperationCharges(deps, meteredFields);
      rateLimits?.readRules(schema);
      const metered = creditsDirectiveTransformer({ ...directiveOptions, wrap })(schema);
      return rateLimits ? rateLimits.transform(metered) : metered;
    },
    get meteredFields() {
      return meteredFields;
    },
    plugin: composePlugins<TContext>([
      // Only when the library builds the request's state and reads a header for it: a host that
      // brings its own state (this server) pays nothing per request for it.
      ...(readsHeaders ? [noteRequestHeaders<TContext>(headersOf)] : []),
      creditsExtensionPlugin<TContext>(operationCharges, requestOf),
      formatErrorsPlugin<TContext>(),
      errorsPlugin<TContext>(requestOf),
    ]),
    admin: createAdminOperations(handle.db, creditTypes),
    database: handle,
    observer,
    responseNotDelivered: async (context) => operationCharges.undelivered(await requestOf(context)),
    migrate: () => migrateCredits(handle),
    async close() {
      await recovery?.stop();
      await lease.stop();
      await rateLimits?.close();
      if (owned) await handle.close();
    },
  };
}
