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
import { CREDITS_DIRECTIVE_SDL, creditsDirectiveTransformer, refuseTransformedSchema } from "../credits/credits-directive.js";
import { markServedByPlugin, type RequestOf } from "../credits/credits-request.js";
import type { Estimator } from "../credits/estimators/estimator.js";
import type { Meter } from "../credits/meters/meter.js";
import type { MeteredField } from "../credits/metered-field.js";
import { loggingObserver } from "../credits/logging-observer.js";
import { createOperationCharges, type OperationCharges } from "../credits/operation-charges.js";
import { connectDatabase, MIGRATIONS_FOLDER } from "../db/connect.js";
import { applyMigrations, logAppliedMigrations, migrationState, MigrationsRefusedError } from "../db/migrate-postgres.js";
import type { DatabaseHandle } from "../db/database.js";
import { isPgPool, listenForPoolErrors } from "../db/pool-error-listeners.js";
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
import { createRepeatedRefundFailures } from "../recovery/repeated-refund-failures.js";
import { backfillBalances } from "../subscriptions/balance-backfill.js";
import { attachResolvers, type ResolverMap } from "./attach-resolvers.js";
import { refuseNullVariablesPlugin } from "../graphql/validation/null-variables.js";
import { composePlugins } from "./compose-plugins.js";
import { contextFailurePlugin } from "./context-failure-plugin.js";
import { listedOncePlugin } from "./listed-once-plugin.js";
import { formatErrorsPlugin, requestErrorsPlugin } from "./format-errors-plugin.js";
import { createAdminOperations, type AdminOperations } from "./admin-operations.js";
import { migrateCredits } from "./migrations.js";
import { DEFAULT_UNAUTHENTICATED_MESSAGE, requestStates, type ContextReaders } from "./request-state.js";
import { startInstanceLease, type InstanceLease } from "../recovery/instance-lease.js";
import { addCreditAmountArgument, readCheckedMeteredFields } from "./credit-amount-argument.js";
import { createLibraryRateLimits, type LibraryRateLimits, type RateLimitSettings } from "./rate-limits.js";
import { checkOptions, creditTypeNames, described, isFunction } from "./option-checks.js";

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
   * false when the host migrates it itself (migrateCredits before createCredits, or drizzle's migrator on
   * the package's drizzle/ with migrationsSchema MIGRATIONS_SCHEMA and migrationsTable MIGRATIONS_TABLE).
   * A database without the credits tables is then refused at start, saying to run the migrations.
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
   * With it on, close() runs one last pass (without `afterPass`) for the holds of calls still running.
   * `afterPass` is given a signal that close() aborts: long upkeep should end at its next check of it.
   */
  recovery?: false | { intervalMs?: number; settleTimeoutMs?: number; batchSize?: number; afterPass?: (signal: AbortSignal) => Promise<unknown> };
  /**
   * This instance's lease (DESIGN.md, "Retries and crashes"): a row renewed every third of `ttlMs`
   * (default 15 s). Every hold records it, and the recovery pass of any instance refunds the holds of
   * an instance whose lease expired, so a crashed server's holds come back within seconds while a
   * long call on a live one is never refunded under it. close() ends the lease at once.
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
   * and limits the fields with `@rateLimit`. Validates each directive now: a bad one throws, naming the field
   * (or the type, argument … it was put on instead of a field). Call it once: a schema it (or any
   * credits core) already transformed is refused.
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
   * Tell it when a request's response will never reach the client: its connection closed before
   * the response was written out (for example `res.on("close")` without `res.writableFinished` in
   * node:http or Express). Calls that settle after are refunded as undelivered; calls already settled
   * are refunded whole, unless an Idempotency-Key kept their result for a retry. Safe to call at any
   * time during the request, more than once.
   */
  responseNotDelivered(context: TContext): Promise<void>;
  /** Applies the migrations again (idempotent). */
  migrate(): Promise<void>;
  /**
   * Clean shutdown; call it once the host has stopped serving (drained HTTP), since the holds of
   * calls still running then are refunded. Refuses further holds, writes the holds and settlements
   * queued (those a database outage kept waiting are tried once more), ends this instance's lease in
   * the database at once and, with recovery on, runs one last recovery pass that refunds the holds
   * of calls still running (RECOVERY_SHUTDOWN_REASON; a call that finishes later is not charged: its
   * settlement finds the hold refunded). Then stops the recovery timer and the rate-limit store, and
   * closes the database when it opened it. So a clean stop leaves no hold pending; with recovery off,
   * the next pass of another instance refunds them, the lease being already ended.
   */
  close(): Promise<void>;
}

/**
 * Notes each request's context as the plugin sees it (Apollo hands every operation a shallow copy of
 * the host's context: only that copy leads to the request's state) and, when `headersOf` is given, its
 * HTTP headers, before anything reads the request's state, for what the host's context does not carry.
 */
function noteRequests<TContext extends object>(
  served: WeakSet<object>,
  headersOf: WeakMap<object, { get(name: string): string | undefined }> | undefined,
): ApolloServerPlugin<TContext> {
  return {
    async requestDidStart({ request, contextValue }) {
      served.add(contextValue);
      if (headersOf && request.http) headersOf.set(contextValue, request.http.headers);
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

/** The named entries of `estimators` or `meters`, which must be a plain object of them. */
function namedEntries(option: "estimators" | "meters", value: unknown): [string, unknown][] {
  if (value === undefined) return [];
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    const example = option === "estimators" ? "{ perItem: (args) => args.n }" : "{ items: (args, result) => result.length }";
    throw new Error(`createCredits: \`${option}\` is ${described(value)}: give an object of them by name, e.g. ${option}: ${example}`);
  }
  return Object.entries(value);
}

/** Estimators by name; a mistaken one is a startup error naming it (DESIGN.md, convention 1), never one per request. */
function toEstimators(option: unknown): Map<string, Estimator> {
  return new Map(
    namedEntries("estimators", option).map(([name, e]): [string, Estimator] => {
      if (isFunction(e)) return [name, { name, description: name, args: z.any(), estimate: e as Estimator["estimate"] }];
      const said = `createCredits: estimators.${name}`;
      if (e === null || typeof e !== "object") throw new Error(`${said} is ${described(e)}: give a function (args) => credits, or an Estimator { estimate(args), args }`);
      const estimator = e as Partial<Estimator>;
      if (!isFunction(estimator.estimate)) throw new Error(`${said} has no estimate(args) function: give a function (args) => credits, or an Estimator { estimate(args), args }`);
      if (estimator.args !== undefined && !isFunction((estimator.args as { safeParse?: unknown } | null)?.safeParse)) {
        throw new Error(`${said}.args is not a zod schema: give the schema of the field's arguments (z.object({ … })), or leave it out`);
      }
      if (estimator.args !== undefined) return [name, e as Estimator];
      // No schema: any arguments, as for a plain function (the object itself is called, `this` kept).
      const estimate = (args: unknown) => estimator.estimate!(args);
      return [name, { name: estimator.name ?? name, description: estimator.description ?? name, args: z.any(), estimate }];
    }),
  );
}

function toMeters(option: unknown): Map<string, Meter> {
  return new Map(
    namedEntries("meters", option).map(([name, m]): [string, Meter] => {
      if (isFunction(m)) return [name, { name, description: name, measure: m as Meter["measure"] }];
      const said = `createCredits: meters.${name}`;
      if (m === null || typeof m !== "object") throw new Error(`${said} is ${described(m)}: give a function (args, result) => credits, or a Meter { measure(args, result) }`);
      if (!isFunction((m as Partial<Meter>).measure)) throw new Error(`${said} has no measure(args, result) function: give a function (args, result) => credits, or a Meter { measure(args, result) }`);
      return [name, m as Meter];
    }),
  );
}

const READERS = ["caller", "subscription", "requestId", "idempotencyKey", "clientAddress", "clientGone", "request"] as const;

/** Every context reader given is a function of the host's context. */
function checkReaders(options: Record<string, unknown>): void {
  for (const reader of READERS) {
    const value = options[reader];
    if (value !== undefined && !isFunction(value)) {
      throw new Error(`createCredits: \`${reader}\` is ${described(value)}: give a function of your GraphQL context, e.g. ${reader}: (ctx) => …`);
    }
  }
}

/** A database string: a PostgreSQL URL, or what PGlite opens (a directory, "file://<dir>", "memory://"). */
function databaseLocation(database: string): { databaseUrl: string } | { pgliteDir: string } {
  if (/^postgres(ql)?:\/\//i.test(database)) return { databaseUrl: database };
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(database)?.[1].toLowerCase();
  if (database.trim() === "" || (scheme !== undefined && scheme !== "memory" && scheme !== "file")) {
    // Only the scheme: a URL may carry a password.
    const given = database.trim() === "" ? "an empty string" : `a ${scheme}:// URL`;
    throw new Error(
      `createCredits: \`database\` is ${given}: give a postgres:// (or postgresql://) URL, a PGlite data directory ("./data"), "memory://", or an open handle { db, kind, ping, close }`,
    );
  }
  return { pgliteDir: database };
}

async function openDatabase(database: string | DatabaseHandle, logger: Logger, migrate: boolean): Promise<{ handle: DatabaseHandle; owned: boolean }> {
  if (database === undefined || database === null || (typeof database !== "string" && typeof database.db !== "object")) {
    throw new Error("createCredits: `database` is a postgres:// URL, a PGlite directory (\"memory://\" keeps nothing) or an open handle { db, kind, ping, close }");
  }
  if (typeof database !== "string") {
    watchHostPool(database, logger);
    if (migrate) logAppliedMigrations(logger, await applyMigrations(database.db, MIGRATIONS_FOLDER));
    else await checkMigrated(database, logger);
    return { handle: database, owned: false };
  }
  const handle = await connectDatabase({ ...databaseLocation(database), logger });
  return { handle, owned: true };
}

/** `migrate: false`: the host migrates. Two cheap queries say whether it did, before anything fails on a missing table. */
/**
 * A host's own pg pool gets the server's listeners (src/db/pool-error-listeners.ts): without them a
 * backend killed while a credits transaction (or any of the host's) held its client crashed the host.
 */
function watchHostPool(handle: DatabaseHandle, logger: Logger): void {
  const client = (handle.db as { $client?: unknown }).$client;
  if (handle.kind === "postgres" && isPgPool(client)) listenForPoolErrors(client, logger);
}

async function checkMigrated(handle: DatabaseHandle, logger: Logger): Promise<void> {
  const state = await migrationState(handle.db, MIGRATIONS_FOLDER);
  // A newer release's schema, or a gap: migrateCredits would refuse it, and serving on it is not safe either.
  if (state.refusal) throw new MigrationsRefusedError(`createCredits: ${state.refusal}`);
  if (!state.tables) {
    throw new Error(
      "createCredits: the database is not migrated (it has no credits tables) and `migrate: false` was given: run `await migrateCredits(handle)` before createCredits, or leave `migrate` on",
    );
  }
  if (state.pending) {
    logger.warn(
      { event: "credits.migrations_pending", pending: state.pending },
      `createCredits: ${state.pending} credits migration(s) of this version are not applied (migrate: false): run \`await migrateCredits(handle)\``,
    );
  }
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

/**
 * The name of every option (the context readers included), for refusing an unknown one: typed as a
 * record of CreditsOptions' keys, so an option added to the interface must be added here.
 */
const OPTION_NAMES: Record<keyof CreditsOptions<unknown>, true> = {
  database: true,
  migrate: true,
  creditTypes: true,
  estimators: true,
  meters: true,
  caller: true,
  subscription: true,
  requestId: true,
  idempotencyKey: true,
  clientAddress: true,
  clientGone: true,
  request: true,
  rateLimit: true,
  idempotency: true,
  logger: true,
  unauthenticatedMessage: true,
  observers: true,
  ledger: true,
  recovery: true,
  lease: true,
  clock: true,
};

const NO_RATE_LIMIT: RateLimitGate = { checkMetered: async () => undefined };

export async function createCredits<TContext extends object = Record<string, unknown>>(options: CreditsOptions<TContext>): Promise<Credits<TContext>> {
  if (options === null || typeof options !== "object" || Array.isArray(options)) {
    throw new Error("createCredits: pass the options object (docs/library.md, \"Options\")");
  }
  // Mistaken options fail here, at start, naming the option (hosts in JavaScript get no type checks),
  // before anything is opened that the refusal would have to close (a pool, PGlite, a timer).
  checkOptions(options as unknown as Record<string, unknown>, OPTION_NAMES);
  const creditTypes = creditTypeNames(options.creditTypes);
  const directiveOptions = {
    creditTypes: new Set(creditTypes),
    estimators: toEstimators(options.estimators),
    meters: toMeters(options.meters),
    subscriptionFromContext: options.request !== undefined || (options as { subscription?: unknown }).subscription !== undefined,
  };
  if (!options.request && !options.caller) throw new Error("createCredits: say how to find the caller (options.caller)");
  checkReaders(options as unknown as Record<string, unknown>);
  if (typeof options.database === "string") databaseLocation(options.database);
  const logger = options.logger ?? defaultLogger();

  const { handle, owned } = await openDatabase(options.database, logger, options.migrate ?? true);
  // What was opened or started so far, stopped (last first) when a later step fails: a refused start
  // leaves no pool, PGlite or timer behind to keep the host's process alive.
  const opened: (() => unknown)[] = owned ? [() => handle.close()] : [];
  try {
    // A credit type added since a subscription was opened gets its zero balance now (402 when spent, not 404).
    await backfillBalances(handle.db, creditTypes);
    // The HTTP headers of each request, noted by the plugin when the request starts (Idempotency-Key).
    const headersOf = new WeakMap<object, { get(name: string): string | undefined }>();
    // The contexts the plugin saw requests start with, when the library keeps the requests' state.
    const servedContexts = new WeakSet<object>();
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
    const lease = startInstanceLease({ db: handle.control ?? handle.db, ttlMs: options.lease?.ttlMs ?? LEASE_TTL_MS, logger });
    opened.push(() => lease.stop());
    const ledger = createCoalescingChargeLedger(handle.db, {
      ...options.ledger,
      instanceId: () => lease.current(),
      leaseExpired: (id) => lease.expired(id),
      logger,
    });
    opened.push(() => ledger.close());
    const rateLimitOption = options.rateLimit ?? {};
    const rateLimits: LibraryRateLimits | undefined =
      rateLimitOption === false || "gate" in rateLimitOption
        ? undefined
        : createLibraryRateLimits(rateLimitOption, { logger, requestOf, now: options.clock ? () => options.clock!().getTime() : undefined });
    if (rateLimits) opened.push(() => rateLimits.close());
    const rateLimiter: RateLimitGate =
      rateLimitOption !== false && "gate" in rateLimitOption ? rateLimitOption.gate : (rateLimits?.gate ?? NO_RATE_LIMIT);
    const deps: ChargeDeps = { ledger, rateLimiter, observer, idempotency: idempotencyGateOf(options, handle, lease, logger) };
    // Refuses a metered call in a request the plugin did not serve: an Apollo Server without
    // `plugins: [credits.plugin]` would hold it and never settle it.
    const wrap = createChargeWrapper(deps, requestOf, { requirePlugin: true });

    let meteredFields: MeteredField[] = [];
    let charges: OperationCharges | undefined;
    const operationCharges: OperationCharges = {
      // Called by the plugin for every operation before it runs: the request is noted as served by it.
      holdOperation: (request) => {
        markServedByPlugin(request.ctx);
        return charges ? charges.holdOperation(request) : Promise.resolve(undefined);
      },
      settle: (ctx, data) => (charges ? charges.settle(ctx, data) : Promise.resolve()),
      undelivered: (ctx) => (charges ? charges.undelivered(ctx) : Promise.resolve()),
    };

    // Which holds' refunds already failed on an earlier pass: each stuck hold alerts once.
    const refundFailures = createRepeatedRefundFailures();
    const recoveryPass = (stoppingInstanceId?: string) =>
      runRecoveryPass({
        db: handle.db,
        settleTimeoutMs: options.recovery ? (options.recovery.settleTimeoutMs ?? SETTLE_TIMEOUT_MS) : SETTLE_TIMEOUT_MS,
        batchSize: options.recovery ? options.recovery.batchSize : undefined,
        clock: options.clock,
        logger,
        observer,
        stoppingInstanceId,
        refundFailures,
      });
    const recovery: RecoveryScheduler | undefined =
      options.recovery === false
        ? undefined
        : startRecoveryScheduler({
            intervalMs: options.recovery?.intervalMs ?? 5_000,
            logger,
            runPass: async (signal) => {
              try {
                return await recoveryPass();
              } finally {
                if (options.recovery) await options.recovery.afterPass?.(signal);
              }
            },
          });
    if (recovery) opened.push(() => recovery.stop());

    return {
      typeDefs: `${CREDITS_DIRECTIVE_SDL}\n${RATE_LIMIT_DIRECTIVE_SDL}`,
      transform(base, resolvers) {
        // Before anything is read or replaced: a schema transformed twice would charge fields twice.
        refuseTransformedSchema(base);
        const withResolvers = resolvers ? attachResolvers(base, resolvers) : base;
        // Each @credits use, and the arguments the charge path reads (subscriptionId an ID, a declared
        // creditAmount the optional Int): a mistake throws now, naming the field.
        meteredFields = readCheckedMeteredFields(withResolvers, directiveOptions);
        const schema = addCreditAmountArgument(withResolvers);
        charges = createOperationCharges(deps, meteredFields);
        rateLimits?.readRules(schema);
        const metered = creditsDirectiveTransformer({ ...directiveOptions, wrap })(schema);
        return rateLimits ? rateLimits.transform(metered) : metered;
      },
      get meteredFields() {
        return meteredFields;
      },
      plugin: composePlugins<TContext>([
        // First, so a second listing is refused before any other part starts twice.
        listedOncePlugin<TContext>(),
        // Only when the library builds the request's state: a host that brings its own state (this
        // server) pays nothing per request for it.
        ...(options.request ? [] : [noteRequests<TContext>(servedContexts, readsHeaders ? headersOf : undefined)]),
        // A variable sent as null where a value is required would be refused only when execution
        // reached it, after the fields before it had run: refused before anything is held instead.
        refuseNullVariablesPlugin<TContext>(),
        creditsExtensionPlugin<TContext>(operationCharges, requestOf),
        formatErrorsPlugin<TContext>(),
        // Requests Apollo refuses before any plugin hook runs (a body like {"query": 5}): BAD_USER_INPUT.
        requestErrorsPlugin<TContext>(logger),
        // A context function of the host's that throws: its error in the closed code set, never its stack.
        contextFailurePlugin<TContext>(logger),
        errorsPlugin<TContext>(requestOf),
      ]),
      admin: createAdminOperations(handle.db, creditTypes),
      database: handle,
      observer,
      async responseNotDelivered(context) {
        if (!options.request && !servedContexts.has(context)) {
          // The object the host's context function returned, not the copy Apollo ran the operation
          // with: nothing leads from it to the request's calls, which would stay charged unnoticed.
          logger.warn(
            { event: "credits.undelivered_unknown_context" },
            "responseNotDelivered was given a context no request started with, so nothing was refunded: Apollo runs each operation with a copy of your context; pass the operation's contextValue (docs/library.md)",
          );
          return;
        }
        await operationCharges.undelivered(await requestOf(context));
      },
      migrate: () => migrateCredits(handle),
      async close() {
        // No hold from now on; what was asked of the ledger is written (settlements an outage kept
        // waiting are tried once more), so only the holds of calls still running stay pending.
        await ledger.close();
        await recovery?.stop();
        // Ended now, not left to lapse a TTL later: its holds are recoverable at once, by anyone.
        let ended: string | undefined;
        try {
          ended = await lease.release();
        } catch (err) {
          logger.error({ event: "lease.release_failed", err }, "could not end the instance lease at shutdown: its open holds are refunded once it expires");
        }
        // This instance's own last pass: nothing it held stays pending after it exits. A call that
        // still finishes is not charged (its settlement finds the hold refunded: a late settlement).
        if (recovery && ended !== undefined) {
          try {
            await recoveryPass(ended);
          } catch (err) {
            logger.error({ event: "recovery.pass_failed", component: "recovery", err }, "the shutdown recovery pass failed: the open holds are refunded by the next pass of another instance");
          }
        }
        await rateLimits?.close();
        if (owned) await handle.close();
      },
    };
  } catch (err) {
    for (const stop of opened.reverse()) {
      try {
        await stop();
      } catch (closeErr) {
        logger.warn({ err: closeErr }, "createCredits: closing what a failed start opened failed");
      }
    }
    throw err;
  }
}
