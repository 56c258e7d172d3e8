/**
 * The public entry of the package: `import { createCredits } from "graphql-credits"`
 * (docs/library.md). Everything here is the credits core; none of it imports the server's app,
 * configuration or context (DESIGN.md, convention 10; test/unit/library-boundary.test.ts checks).
 */
import "reflect-metadata";

export { createCredits } from "./create-credits.js";
export type { Credits, CreditsOptions, CreditTypeOption, EstimatorOption, MeterOption } from "./create-credits.js";
export type { ResolverMap } from "./attach-resolvers.js";
export type { ContextReaders } from "./request-state.js";
export type { AdminOperations, BalanceChangeInput } from "./admin-operations.js";
export { migrateCredits, MigrationsRefusedError, MIGRATIONS_FOLDER, MIGRATIONS_SCHEMA, MIGRATIONS_TABLE } from "./migrations.js";
export type { CreditsRequest, RequestOf } from "../credits/credits-request.js";
export type { Viewer as Caller } from "../auth/viewer.js";
export type { Estimator } from "../credits/estimators/estimator.js";
export { defineEstimator } from "../credits/estimators/estimator.js";
export type { Meter } from "../credits/meters/meter.js";
export { defineMeter } from "../credits/meters/meter.js";
export type { MeteredField } from "../credits/metered-field.js";
export type { ChargeObserver } from "../credits/charge-observer.js";
export type { ChargeRecord, CreditsExtension } from "../credits/charge-collector.js";
export type { DatabaseHandle } from "../db/database.js";
export type { LedgerEntryRecord } from "../ledger/entry.js";
export type { SubscriptionRecord } from "../subscriptions/subscription-store.js";
export { CREDITS_DIRECTIVE_SDL, creditsDirective } from "../credits/credits-directive.js";
export { RATE_LIMIT_DIRECTIVE_SDL, rateLimitDirective } from "../ratelimit/rate-limit-directive.js";
export type { RateLimitGate } from "../ratelimit/rate-limit-gate.js";
export { DEFAULT_RATE_LIMIT, type RateLimitSettings } from "./rate-limits.js";
export { DEFAULT_UNAUTHENTICATED_MESSAGE } from "./request-state.js";
export {
  CreditsError,
  UnauthenticatedError,
  BadUserInputError,
  ForbiddenError,
  NotFoundError,
  InsufficientCreditsError,
  ConflictError,
  RateLimitedError,
  InternalError,
} from "../errors/errors.js";
export { ERROR_HTTP_STATUS, type ErrorCode } from "../errors/codes.js";
