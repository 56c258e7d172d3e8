/**
 * The charge path (DESIGN.md): one wrapper around every @credits field's resolver.
 *   1 authenticate → 2 validate → 3 authorize → 4 rate-limit → 5 price → 6 debit → 7 run → 8 settle
 * It runs outside type-graphql's middleware (it is a mapSchema wrapper), so it authenticates and
 * authorizes by itself before it debits anything. The debit commits before the resolver starts and
 * no lock is held while the resolver runs.
 */
import type { GraphQLError, GraphQLFieldResolver, GraphQLResolveInfo } from "graphql";
import {
  CreditsError,
  ForbiddenError,
  InsufficientCreditsError,
  InternalError,
  NotFoundError,
  isUserInputError,
} from "../errors/errors.js";
import { requireViewer, responsePath, responsePathKey, type RequestContext } from "../graphql/context.js";
import type { AuthorizedDebitOutcome, ChargeLedger } from "../ledger/charge-ledger.js";
import type { Viewer } from "../auth/viewer.js";
import type { RateLimitGate } from "../ratelimit/rate-limit-gate.js";
import type { RateLimitPass } from "../ratelimit/rate-limiter.js";
import type { IdempotencyGate } from "../idempotency/idempotency-gate.js";
import type { ChargeFacts, ChargeObserver } from "./charge-observer.js";
import type { ChargeRecord } from "./charge-collector.js";
import type { MeteredField } from "./metered-field.js";
import { CREDIT_AMOUNT_ADMIN_ONLY, priceMeteredCall, validateMeteredArgs } from "./pricing.js";
import type { MeteredResolverWrapper } from "./credits-directive.js";
import { isUuid } from "../util/uuid.js";
import { quoteId } from "../util/quote-id.js";

export interface ChargeWrapperDeps {
  ledger: ChargeLedger;
  rateLimiter: RateLimitGate;
  observer: ChargeObserver;
  idempotency?: IdempotencyGate;
}

export function createChargeWrapper(deps: ChargeWrapperDeps): MeteredResolverWrapper {
  return (field, resolve) => (source, rawArgs, context, info) =>
    chargeAndRun(deps, field, resolve, source, rawArgs as Record<string, unknown>, context as RequestContext, info);
}

async function chargeAndRun(
  deps: ChargeWrapperDeps,
  field: MeteredField,
  resolve: GraphQLFieldResolver<unknown, unknown>,
  source: unknown,
  args: Record<string, unknown>,
  ctx: RequestContext,
  info: GraphQLResolveInfo,
): Promise<unknown> {
  ctx.charges.markMeteredField();
  const operation = field.coordinate;
  let charge: ChargeRecord;
  let claim: Awaited<ReturnType<IdempotencyGate["begin"]>>;
  try {
    // 1. Authenticate.
    const viewer = requireViewer(ctx);
    // 2. Validate input: nothing is charged for bad arguments.
    const validArgs = validateMeteredArgs(field, args);
    const subscriptionId = args.subscriptionId as string;
    const override = args.creditAmount as number | null | undefined;
    // 3. Authorize. When the ledger can check the subscription inside the debit statement, the
    // common call (no creditAmount, no Idempotency-Key) skips this read: the debit refuses with what
    // it saw, and authorizeSpend raises the same errors in the same order (see step 6).
    const authorizeInDebit =
      deps.ledger.authorizeAndDebit !== undefined && isUuid(subscriptionId) && (override === undefined || override === null) &&
      ctx.idempotencyKey === undefined;
    if (!authorizeInDebit) {
      const subscription = isUuid(subscriptionId) ? await ctx.loaders.subscription.load(subscriptionId) : undefined;
      authorizeSpend(subscriptionId, subscription, viewer, override);
    }
    // Idempotent retries replay before anything else is spent or counted.
    claim = await deps.idempotency?.begin(field, args, ctx, info);
    if (claim?.kind === "replay") {
      const replayed = { ...claim.charge, path: responsePath(info), replayed: true };
      ctx.charges.addCharge(replayed);
      // The first call ended in a user-input error and kept its charge: the retry gets that error again.
      if (claim.error) throw claim.error;
      return claim.result;
    }
    try {
      // 4. Rate limit.
      let rateLimitPass: RateLimitPass | void;
      try {
        rateLimitPass = await deps.rateLimiter.checkMetered(field, args, ctx, info);
      } catch (err) {
        // Step 3 comes first: a refused call that may not spend this subscription says so.
        if (authorizeInDebit) authorizeSpend(subscriptionId, await ctx.loaders.subscription.load(subscriptionId), viewer, override);
        throw err;
      }
      // 5. Price.
      const price = priceMeteredCall(field, validArgs, override);
      if (price.fallback) {
        deps.observer.estimatorFallback({
          requestId: ctx.requestId,
          operation,
          estimator: price.estimator ?? "",
          fallbackAmount: price.estimated,
          error: price.fallbackError,
        });
      }
      // 6. Debit: one statement, committed before the resolver starts.
      const started = performance.now();
      let outcome: AuthorizedDebitOutcome;
      try {
        const debit = {
          subscriptionId,
          creditType: field.creditType,
          amount: price.charged,
          operation,
          estimated: price.estimated,
          actorId: viewer.id,
          adminOverride: price.adminOverride,
          requestId: ctx.requestId,
        };
        outcome = authorizeInDebit
          ? await deps.ledger.authorizeAndDebit!({ ...debit, actorIsAdmin: viewer.isAdmin })
          : await deps.ledger.debit(debit);
      } catch (err) {
        deps.observer.transactionFailed({
          requestId: ctx.requestId,
          operation,
          stage: "debit",
          subscriptionId,
          creditType: field.creditType,
          actorId: viewer.id,
          amount: price.charged,
          error: err,
        });
        throw new InternalError("The debit failed on the database", { cause: err });
      }
      const debitSeconds = (performance.now() - started) / 1000;
      if (!outcome.ok) {
        if (outcome.reason === "unauthorized") {
          // Authorization (step 3) refused after the call was counted (step 4): take the count back,
          // so a refused call costs the caller's rate limit nothing, as in DESIGN.md's order.
          await rateLimitPass?.release();
          authorizeSpend(subscriptionId, outcome.subscription, viewer, override);
          throw new ForbiddenError("You may not spend credits of this subscription");
        }
        if (outcome.reason === "no-balance") {
          throw new NotFoundError(`Subscription ${subscriptionId} has no ${field.creditType} balance`);
        }
        ctx.charges.noteBalance(subscriptionId, field.creditType, outcome.available);
        throw new InsufficientCreditsError({
          creditType: field.creditType,
          required: price.charged,
          available: outcome.available,
          subscriptionId,
        });
      }
      ctx.loaders.balances.clear(subscriptionId);
      charge = {
        path: responsePath(info),
        operation,
        subscriptionId,
        type: field.creditType,
        estimated: price.estimated,
        charged: price.charged,
        refunded: 0,
        remaining: outcome.balanceAfter,
        entryId: outcome.entryId,
        adminOverride: price.adminOverride,
        fallback: price.fallback,
      };
      ctx.charges.addCharge(charge);
      deps.observer.charged({
        requestId: ctx.requestId,
        operation,
        subscriptionId,
        creditType: field.creditType,
        actorId: viewer.id,
        entryId: outcome.entryId,
        charged: price.charged,
        estimated: price.estimated,
        remaining: outcome.balanceAfter,
        adminOverride: price.adminOverride,
        fallback: price.fallback,
        debitSeconds,
      });
    } catch (err) {
      if (claim?.kind === "first") await claim.abandon().catch(() => undefined);
      throw err;
    }
  } catch (err) {
    if (err instanceof CreditsError && err.code !== "INTERNAL_SERVER_ERROR") {
      deps.observer.refused({
        requestId: ctx.requestId,
        operation,
        code: err.code,
        message: err.message,
        subscriptionId: typeof args.subscriptionId === "string" ? args.subscriptionId : undefined,
        creditType: field.creditType,
        actorId: ctx.viewer?.id,
        ...(err instanceof InsufficientCreditsError ? { required: err.details.required, available: err.details.available } : {}),
      });
    }
    throw err;
  }

  // 7. Run.
  let result: unknown;
  try {
    result = await resolve(source, args, ctx, info);
  } catch (err) {
    // 8a. Settle a failure: a user-input error keeps the charge; anything else is refunded whole.
    if (isUserInputError(err)) {
      // The charge stands, so the key must remember it: a retry replays this error instead of paying
      // again. Stored before the settle, so a crash in between can only leave the key recorded and
      // the charge refunded by recovery, never a second charge for one key.
      if (claim?.kind === "first") {
        await claim
          .completeWithError(err as GraphQLError, charge)
          .catch((storeErr) => ctx.logger.error({ err: storeErr }, "could not store the idempotent outcome"));
      }
      await settleSuccess(deps, ctx, charge);
    } else {
      await refundCharge(deps, ctx, charge, err);
      if (claim?.kind === "first") await claim.abandon().catch(() => undefined);
    }
    throw err;
  }
  // 8b. Settle a success. The idempotent result is stored first (see 8a for why).
  if (claim?.kind === "first") {
    await claim.complete(result, charge).catch((err) => ctx.logger.error({ err }, "could not store the idempotent result"));
  }
  await settleSuccess(deps, ctx, charge);
  reportMismatch(deps, ctx, info, charge);
  return result;
}

/**
 * Step 3's checks, in the charge path's order. `subscription` as read (undefined: it does not exist),
 * by the request's loader or by the debit statement that refused.
 */
function authorizeSpend(
  subscriptionId: string,
  subscription: { ownerId: string; status: string } | undefined,
  viewer: Viewer,
  override: number | null | undefined,
): void {
  if (!subscription) throw new NotFoundError(`Subscription ${quoteId(subscriptionId)} does not exist`);
  if (subscription.ownerId !== viewer.id && !viewer.isAdmin) {
    throw new ForbiddenError("You may only spend credits of your own subscriptions");
  }
  if (subscription.status !== "ACTIVE") {
    throw new ForbiddenError(`Subscription ${subscriptionId} is ${subscription.status}: only ACTIVE subscriptions can spend credits`);
  }
  if (override !== undefined && override !== null && !viewer.isAdmin) {
    throw new ForbiddenError(CREDIT_AMOUNT_ADMIN_ONLY);
  }
}

/** What every event about a recorded charge says: who, which request, which balance. */
function chargeFacts(ctx: RequestContext, charge: ChargeRecord): ChargeFacts {
  return {
    requestId: ctx.requestId,
    operation: charge.operation,
    subscriptionId: charge.subscriptionId,
    creditType: charge.type,
    actorId: ctx.viewer?.id ?? "",
  };
}

async function settleSuccess(deps: ChargeWrapperDeps, ctx: RequestContext, charge: ChargeRecord): Promise<void> {
  const facts = chargeFacts(ctx, charge);
  try {
    const settled = await deps.ledger.settle(charge.subscriptionId, charge.entryId);
    if (!settled) deps.observer.lateSettlement({ ...facts, entryId: charge.entryId, charged: charge.charged });
  } catch (err) {
    // The charge stays pending; the recovery pass will settle it by refunding. The caller got the
    // result, so this is logged and alerted rather than failing the request.
    deps.observer.transactionFailed({ ...facts, stage: "settle", entryId: charge.entryId, amount: charge.charged, error: err });
  }
}

async function refundCharge(deps: ChargeWrapperDeps, ctx: RequestContext, charge: ChargeRecord, cause: unknown): Promise<void> {
  const facts = chargeFacts(ctx, charge);
  const reason = `system error: ${cause instanceof Error ? cause.name : "unknown"}`;
  try {
    const entry = await deps.ledger.refund({
      subscriptionId: charge.subscriptionId,
      entryId: charge.entryId,
      reason,
      actorId: null,
      requestId: ctx.requestId,
    });
    if (entry) {
      ctx.charges.markRefunded(charge.entryId, entry.amount, entry.balanceAfter);
      ctx.loaders.balances.clear(charge.subscriptionId);
      deps.observer.refunded({ ...facts, entryId: charge.entryId, refunded: entry.amount, remaining: entry.balanceAfter, reason });
    }
  } catch (err) {
    // The pending mark is still there: the recovery pass retries the refund.
    deps.observer.transactionFailed({ ...facts, stage: "refund", entryId: charge.entryId, amount: charge.charged, error: err });
  }
}

function reportMismatch(deps: ChargeWrapperDeps, ctx: RequestContext, info: GraphQLResolveInfo, charge: ChargeRecord): void {
  const actual = ctx.actualCosts.get(responsePathKey(info));
  if (actual === undefined || actual === charge.charged) return;
  deps.observer.actualCostMismatch({
    ...chargeFacts(ctx, charge),
    entryId: charge.entryId,
    charged: charge.charged,
    actual,
  });
}
