/**
 * The charge path (DESIGN.md, "The charge path"), one small function per step:
 *   authenticate → validate → authorize → admit (rate limit) → price → hold → run → settle
 * `chargeCalls` runs steps 1–6 for a group of metered calls: every upfront-priced field of an
 * operation before any of them runs (all or nothing), or one call inside a list when it is reached.
 * `runHeld` is step 7 for one field; `settleRequest` is step 8 for every hold of a request, once the
 * operation's result is known. Refusals are collected per phase: a phase that refuses any call stops
 * the group there, gives back what earlier phases took (rate-limit counts, idempotency claims) and
 * reports one error per refused call (one per short balance for INSUFFICIENT_CREDITS).
 */
import { randomUUID } from "node:crypto";
import type { GraphQLError, GraphQLFieldResolver, GraphQLResolveInfo } from "graphql";
import type { Viewer } from "../auth/viewer.js";
import {
  CreditsError,
  ForbiddenError,
  InsufficientCreditsError,
  InternalError,
  NotFoundError,
  isArgumentValidationError,
  isUserInputError,
  refusalCodeOf,
} from "../errors/errors.js";
import { requireViewer, type CreditsRequest as RequestContext, type ResponsePath } from "./credits-request.js";
import type { ChargeLedger } from "../ledger/charge-ledger.js";
import { LedgerClosedError } from "../ledger/coalescing-charge-ledger.js";
import { groupTotal, LeaseChangedError, type HoldOutcome, type HoldRequest } from "../ledger/hold.js";
import type { Settlement, SettlementOutcome } from "../ledger/settle.js";
import { checkOperationCalls, type RateLimitGate } from "../ratelimit/rate-limit-gate.js";
import type { RateLimitPass } from "../ratelimit/rate-limiter.js";
import type { FirstClaim, IdempotencyClaim, IdempotencyGate, ReplayClaim } from "../idempotency/idempotency-gate.js";
import { quoteId } from "../util/quote-id.js";
import { isUuid } from "../util/uuid.js";
import type { ChargeRecord } from "./charge-collector.js";
import type { ChargeFacts, ChargeObserver } from "./charge-observer.js";
import type { MeteredField } from "./metered-field.js";
import { normalizeActual } from "./meters/registry.js";
import { CREDIT_AMOUNT_ADMIN_ONLY, priceMeteredCall, validateMeteredArgs, type Price } from "./pricing.js";

export interface ChargeDeps {
  ledger: ChargeLedger;
  rateLimiter: RateLimitGate;
  observer: ChargeObserver;
  idempotency?: IdempotencyGate;
}

/** One metered call about to be charged: the field, where it answers in the response, its coerced arguments. */
export interface MeteredCall {
  field: MeteredField;
  path: ResponsePath;
  args: Record<string, unknown>;
}

type RunOutcome =
  | { kind: "success"; result: unknown }
  | { kind: "user-error"; error: GraphQLError }
  | { kind: "invalid-arguments" }
  | { kind: "refused"; code: "FORBIDDEN" | "UNAUTHENTICATED" }
  | { kind: "system-error"; error: unknown };

/** A call that passed steps 1–6: held (or replayed from its Idempotency-Key), waiting to run and settle. */
export interface HeldCall {
  call: MeteredCall;
  viewer: Viewer;
  validArgs: unknown;
  price: Price;
  /** What extensions.credits reports; updated in place when the call settles. */
  charge: ChargeRecord;
  claim?: FirstClaim;
  replay?: ReplayClaim;
  outcome?: RunOutcome;
}

/** A refused call (or balance) and where in the response it belongs. */
export interface RefusedCall {
  error: CreditsError;
  path: ResponsePath;
}

export type ChargeOutcome = { ok: true; held: HeldCall[] } | { ok: false; refused: RefusedCall[] };

/** Thrown by a phase that refuses: the group stops there. */
class Refusal extends Error {
  constructor(readonly refused: RefusedCall[]) {
    super("refused");
  }
}

/** What a group has taken so far, given back when a later phase refuses. */
interface Taken {
  passes: (RateLimitPass | void)[];
  claims: FirstClaim[];
}

// ---------------------------------------------------------------------------------------------
// Steps 1–6 for a group of calls.

export async function chargeCalls(deps: ChargeDeps, ctx: RequestContext, calls: MeteredCall[]): Promise<ChargeOutcome> {
  if (calls.length === 0) return { ok: true, held: [] };
  ctx.charges.markMeteredField();
  const taken: Taken = { passes: [], claims: [] };
  try {
    const viewer = authenticate(ctx, calls);
    const validArgs = validate(calls);
    // Step 3 is folded into the hold statement when nothing needs the subscription read first.
    const foldAuthorization = canFoldAuthorization(ctx, calls);
    // The subscription's status is checked by the hold statement too whenever it is not read first
    // (statusInHold): then a suspension that committed before the hold stops it, however long the
    // steps in between took, and a keyed call whose first run finished replays (it spends nothing)
    // while its subscription is suspended or cancelled.
    const statusInHold = foldAuthorization || ctx.idempotencyKey !== undefined;
    if (!foldAuthorization) await authorize(ctx, calls, viewer, { status: !statusInHold });
    await admit(deps, ctx, calls, viewer, statusInHold, taken);
    const replays = await claimIdempotencyKeys(deps, ctx, calls, taken);
    const prices = calls.map((call, i) => price(deps, ctx, call, validArgs[i]));
    await refuseTotalsNoBalanceHolds(ctx, calls, viewer, prices, replays, statusInHold);
    const held = await hold(deps, ctx, calls, viewer, validArgs, prices, replays, statusInHold, taken);
    ctx.charges.held.push(...held);
    return { ok: true, held };
  } catch (err) {
    await giveBack(taken);
    if (err instanceof Refusal) {
      const callAt = (path: ResponsePath) => calls.find((c) => c.path.join(".") === path.join(".")) ?? calls[0];
      for (const refused of err.refused) reportRefusal(deps, ctx, refused.error, callAt(refused.path));
      await noteBalancesOfRefusedGroup(ctx, calls);
      return { ok: false, refused: err.refused };
    }
    throw err;
  }
}

/** 1. Authenticate: no or bad token → UNAUTHENTICATED, once per call. */
function authenticate(ctx: RequestContext, calls: MeteredCall[]): Viewer {
  try {
    return requireViewer(ctx);
  } catch (err) {
    if (err instanceof CreditsError) throw new Refusal(calls.map((call) => ({ error: err, path: call.path })));
    throw err;
  }
}

/** 2. Validate input: BAD_USER_INPUT per call whose arguments are wrong. Returns the parsed arguments. */
function validate(calls: MeteredCall[]): unknown[] {
  const refused: RefusedCall[] = [];
  const valid = calls.map((call) => {
    try {
      return validateMeteredArgs(call.field, call.args);
    } catch (err) {
      if (!(err instanceof CreditsError)) throw err;
      refused.push({ error: err, path: call.path });
      return undefined;
    }
  });
  if (refused.length > 0) throw new Refusal(refused);
  return valid;
}

function canFoldAuthorization(ctx: RequestContext, calls: MeteredCall[]): boolean {
  return (
    ctx.idempotencyKey === undefined &&
    calls.every((call) => isUuid(call.args.subscriptionId as string) && (call.args.creditAmount === undefined || call.args.creditAmount === null))
  );
}

/**
 * 3. Authorize, reading the subscriptions (one batched read): NOT_FOUND / FORBIDDEN per call. Without
 * `status`, a subscription that is not ACTIVE passes here: the hold statement refuses it.
 */
async function authorize(ctx: RequestContext, calls: MeteredCall[], viewer: Viewer, check: { status: boolean } = { status: true }): Promise<void> {
  const refused: RefusedCall[] = [];
  await Promise.all(
    calls.map(async (call) => {
      const subscriptionId = call.args.subscriptionId as string;
      const subscription = isUuid(subscriptionId) ? await ctx.loaders.subscription.load(subscriptionId) : undefined;
      try {
        authorizeSpend(subscriptionId, subscription, viewer, call.args.creditAmount as number | null | undefined, check);
      } catch (err) {
        if (!(err instanceof CreditsError)) throw err;
        refused.push({ error: err, path: call.path });
      }
    }),
  );
  if (refused.length > 0) throw new Refusal(sortByCall(refused, calls));
}

/** Step 3's checks, in the charge path's order. `subscription` as read (undefined: it does not exist). */
export function authorizeSpend(
  subscriptionId: string,
  subscription: { ownerId: string; status: string } | undefined,
  viewer: Viewer,
  override: number | null | undefined,
  check: { status: boolean } = { status: true },
): void {
  if (!subscription) throw new NotFoundError(`Subscription ${quoteId(subscriptionId)} does not exist`);
  if (subscription.ownerId !== viewer.id && !viewer.isAdmin) {
    throw new ForbiddenError("You may only spend credits of your own subscriptions");
  }
  if (check.status && subscription.status !== "ACTIVE") {
    throw new ForbiddenError(`Subscription ${subscriptionId} is ${subscription.status}: only ACTIVE subscriptions can spend credits`);
  }
  if (override !== undefined && override !== null && !viewer.isAdmin) {
    throw new ForbiddenError(CREDIT_AMOUNT_ADMIN_ONLY);
  }
}

/** 4. Admit: count every call against its rate limit; RATE_LIMITED per call over it. A replay counts like a call. */
async function admit(deps: ChargeDeps, ctx: RequestContext, calls: MeteredCall[], viewer: Viewer, statusInHold: boolean, taken: Taken): Promise<void> {
  // Calls of one field sharing a counter are counted together, as the operation needs them all.
  const verdicts = await checkOperationCalls(deps.rateLimiter, calls, ctx);
  const refused: RefusedCall[] = [];
  verdicts.forEach((verdict, i) => {
    if (verdict.status === "fulfilled") taken.passes.push(verdict.value);
    else if (verdict.reason instanceof CreditsError) refused.push({ error: verdict.reason, path: calls[i].path });
    else throw verdict.reason;
  });
  if (refused.length === 0) return;
  // Step 3 comes first: a refused call that may not spend this subscription says so.
  if (statusInHold) {
    await giveBack(taken);
    await authorize(ctx, calls, viewer);
  }
  throw new Refusal(refused);
}

/**
 * Idempotency-Key: claim each call's key; a settled one replays instead of being held again.
 *
 * Claimed in the order of their field paths, not the document's: two simultaneous first calls with
 * one key whose documents list the same fields in another order each took one key and then found the
 * other taken, so both answered 409 and neither ran (an outside audit: 7 rounds in 10). In one order,
 * the first to claim the first path takes them all. `taken.claims` ends in the calls' order.
 */
async function claimIdempotencyKeys(deps: ChargeDeps, ctx: RequestContext, calls: MeteredCall[], taken: Taken): Promise<(ReplayClaim | undefined)[]> {
  if (!deps.idempotency || ctx.idempotencyKey === undefined) return calls.map(() => undefined);
  const claims: (IdempotencyClaim | undefined)[] = [];
  for (const i of indexesByFieldPath(calls)) {
    const call = calls[i];
    let claim;
    try {
      claim = await deps.idempotency.begin(call.field, call.args, ctx, call.path.join("."));
    } catch (err) {
      if (err instanceof CreditsError && err.code !== "INTERNAL_SERVER_ERROR") throw new Refusal([{ error: err, path: call.path }]);
      throw err;
    }
    claims[i] = claim;
    // Kept as soon as taken: a later refusal gives back every claim taken so far (giveBack).
    if (claim?.kind === "first") taken.claims.push(claim);
  }
  taken.claims.splice(0, taken.claims.length, ...claims.filter((claim): claim is FirstClaim => claim?.kind === "first"));
  return claims.map((claim) => (claim?.kind === "replay" ? claim : undefined));
}

/** The calls' indexes in the order of their field paths (one order for every request). */
function indexesByFieldPath(calls: MeteredCall[]): number[] {
  const paths = calls.map((call) => call.path.join("."));
  return calls.map((_, i) => i).sort((a, b) => (paths[a] < paths[b] ? -1 : paths[a] > paths[b] ? 1 : 0));
}

/** 5. Price: the admin's creditAmount, the estimator, or the fixed amount; an estimator failure falls back. */
function price(deps: ChargeDeps, ctx: RequestContext, call: MeteredCall, validArgs: unknown): Price {
  const price = priceMeteredCall(call.field, validArgs, call.args.creditAmount as number | null | undefined);
  if (price.fallback) {
    deps.observer.estimatorFallback({
      requestId: ctx.requestId,
      operation: call.field.coordinate,
      estimator: price.estimator ?? "",
      fallbackAmount: price.estimated,
      error: price.fallbackError,
    });
  }
  return price;
}

/** The largest balance the database holds (PostgreSQL's integer). */
const LARGEST_BALANCE = 2_147_483_647;

/**
 * 6, before the statement: a group whose total of one balance is more than any balance can hold
 * (several large admin prices, or a host's estimator) is refused as INSUFFICIENT_CREDITS with that
 * total, as the hold would refuse it, without sending a sum the database's integers cannot take.
 * Rare: the checks the hold statement would have folded in, and the balance, are read for it.
 */
async function refuseTotalsNoBalanceHolds(
  ctx: RequestContext,
  calls: MeteredCall[],
  viewer: Viewer,
  prices: Price[],
  replays: (ReplayClaim | undefined)[],
  statusInHold: boolean,
): Promise<void> {
  const totals = new Map<string, { call: MeteredCall; total: number }>();
  calls.forEach((call, i) => {
    if (replays[i]) return;
    const key = `${call.args.subscriptionId as string}\u0000${call.field.creditType}`;
    const entry = totals.get(key) ?? { call, total: 0 };
    entry.total += prices[i].charged;
    totals.set(key, entry);
  });
  const tooLarge = [...totals.values()].filter((t) => t.total > LARGEST_BALANCE);
  if (tooLarge.length === 0) return;
  if (statusInHold) await authorize(ctx, calls, viewer);
  const refused = await Promise.all(
    tooLarge.map(async ({ call, total }) => {
      const subscriptionId = call.args.subscriptionId as string;
      const balances = await ctx.loaders.balances.load(subscriptionId);
      const available = balances?.find((b) => b.creditType === call.field.creditType)?.balance ?? 0;
      ctx.charges.noteBalance(subscriptionId, call.field.creditType, available);
      const error = new InsufficientCreditsError({ creditType: call.field.creditType, required: total, available, subscriptionId });
      return { error, path: call.path };
    }),
  );
  throw new Refusal(refused);
}

/** 6. Hold the group's prices in one statement (replays are not held again): all or nothing. */
async function hold(
  deps: ChargeDeps,
  ctx: RequestContext,
  calls: MeteredCall[],
  viewer: Viewer,
  validArgs: unknown[],
  prices: Price[],
  replays: (ReplayClaim | undefined)[],
  authorizeInHold: boolean,
  taken: Taken,
): Promise<HeldCall[]> {
  const requests: HoldRequest[] = [];
  const indexes: number[] = [];
  calls.forEach((call, i) => {
    if (replays[i]) return;
    indexes.push(i);
    requests.push({
      subscriptionId: call.args.subscriptionId as string,
      creditType: call.field.creditType,
      amount: prices[i].charged,
      entryId: randomUUID(),
      operation: call.field.coordinate,
      estimated: prices[i].estimated,
      actorId: viewer.id,
      adminOverride: prices[i].adminOverride,
      requestId: ctx.requestId,
      authorize: authorizeInHold,
      actorIsAdmin: viewer.isAdmin,
      // The calls that are held are the ones whose keys were claimed, in the same order.
      requiredLease: taken.claims[requests.length]?.requiredLease,
    });
  });
  const started = performance.now();
  let outcomes: HoldOutcome[];
  try {
    outcomes = await deps.ledger.hold(requests);
  } catch (err) {
    if (err instanceof LedgerClosedError) throw refusedWhileStopping(ctx, calls, indexes, err);
    for (const r of requests) {
      deps.observer.transactionFailed({ requestId: ctx.requestId, operation: r.operation, stage: "hold", subscriptionId: r.subscriptionId, creditType: r.creditType, actorId: viewer.id, amount: r.amount, error: err });
    }
    if (err instanceof LeaseChangedError) {
      throw new InternalError("This server lost its instance lease before the hold: nothing was charged; retry the request", { cause: err });
    }
    throw new InternalError("The hold failed on the database", { cause: err });
  }
  const holdSeconds = (performance.now() - started) / 1000;
  if (outcomes.some((o) => !o.ok)) throw new Refusal(holdRefusals(ctx, calls, indexes, requests, outcomes, viewer));

  const claims = new Map(taken.claims.map((c, i) => [i, c]));
  let claimIndex = 0;
  const held: HeldCall[] = [];
  let r = 0;
  calls.forEach((call, i) => {
    const replay = replays[i];
    const claim = replay || !ctx.idempotencyKey || !deps.idempotency ? undefined : claims.get(claimIndex++);
    if (replay) {
      const charge = { ...replay.charge, path: call.path, replayed: true };
      ctx.charges.addCharge(charge);
      logReplay(ctx, charge);
      held.push({ call, viewer, validArgs: validArgs[i], price: prices[i], charge, replay });
      return;
    }
    const request = requests[r];
    const outcome = outcomes[r++] as Extract<HoldOutcome, { ok: true }>;
    const charge = chargeRecord(call, prices[i], request, outcome.balanceAfter);
    ctx.charges.addCharge(charge);
    deps.observer.charged({
      ...chargeFacts(ctx, charge),
      entryId: request.entryId,
      charged: request.amount,
      estimated: request.estimated,
      remaining: outcome.balanceAfter,
      adminOverride: request.adminOverride,
      fallback: prices[i].fallback,
      debitSeconds: holdSeconds,
    });
    held.push({ call, viewer, validArgs: validArgs[i], price: prices[i], charge, claim });
  });
  for (const subscriptionId of new Set(requests.map((q) => q.subscriptionId))) ctx.loaders.balances.clear(subscriptionId);
  return held;
}

/**
 * A hold asked after the credits core closed (the server is stopping, and its requests outlasted
 * the HTTP server's finish): nothing was held, and the database did not fail. A warning, not a
 * failed transaction: reported as one (FAILED_TRANSACTION alert, error line, webhook post) it sent
 * an outside audit looking for a database outage during every deploy. The client's error is masked
 * (INTERNAL_SERVER_ERROR, 500: the closed set's only code for our side); its message is for the log.
 */
function refusedWhileStopping(ctx: RequestContext, calls: MeteredCall[], indexes: number[], err: LedgerClosedError): Refusal {
  const operations = indexes.map((i) => calls[i].field.coordinate);
  ctx.logger.warn(
    { event: "credits.hold_refused_stopping", component: "credits", operations },
    "hold refused: the server is stopping; nothing was held or charged",
  );
  const error = new InternalError("The server is stopping: nothing was held or charged; send the request again", { cause: err });
  return new Refusal(indexes.map((i) => ({ error, path: calls[i].path })));
}

/** The errors of a refused hold: authorization first, then missing balances, then one per short balance. */
function holdRefusals(
  ctx: RequestContext,
  calls: MeteredCall[],
  indexes: number[],
  requests: HoldRequest[],
  outcomes: HoldOutcome[],
  viewer: Viewer,
): RefusedCall[] {
  const unauthorized: RefusedCall[] = [];
  const missing: RefusedCall[] = [];
  const short: RefusedCall[] = [];
  const seenShort = new Set<string>();
  outcomes.forEach((outcome, j) => {
    const call = calls[indexes[j]];
    const request = requests[j];
    if (outcome.ok) return;
    if (outcome.reason === "unauthorized") {
      try {
        authorizeSpend(request.subscriptionId, outcome.subscription, viewer, call.args.creditAmount as number | null | undefined);
        unauthorized.push({ error: new ForbiddenError("You may not spend credits of this subscription"), path: call.path });
      } catch (err) {
        unauthorized.push({ error: err as CreditsError, path: call.path });
      }
    } else if (outcome.reason === "no-balance") {
      missing.push({ error: new NotFoundError(`Subscription ${request.subscriptionId} has no ${request.creditType} balance`), path: call.path });
    } else if (outcome.reason === "insufficient") {
      const key = `${request.subscriptionId}\u0000${request.creditType}`;
      ctx.charges.noteBalance(request.subscriptionId, request.creditType, outcome.available);
      if (seenShort.has(key)) return;
      seenShort.add(key);
      short.push({
        error: new InsufficientCreditsError({
          creditType: request.creditType,
          required: groupTotal(requests, request.subscriptionId, request.creditType),
          available: outcome.available,
          subscriptionId: request.subscriptionId,
        }),
        path: call.path,
      });
    }
  });
  if (unauthorized.length > 0) return unauthorized;
  if (missing.length > 0) return missing;
  if (short.length > 0) return short;
  // Cannot happen (a group is refused only for one of the reasons above); said plainly if it does.
  throw new InternalError("The hold was refused without a reason");
}

/**
 * A refused group adds no charge, but `remaining` still shows the balances it would have spent from
 * (DESIGN.md, "`extensions.credits`"). A hold's 402 notes what its statement saw; a group refused
 * before the hold (403 for a suspended subscription or a creditAmount, 429, 409, 400) has them read
 * here, one read per subscription, for the subscriptions the caller may see (its own; any, for an
 * admin), never for a stranger's. A read that fails leaves them out: the refusal stands either way.
 */
async function noteBalancesOfRefusedGroup(ctx: RequestContext, calls: MeteredCall[]): Promise<void> {
  const viewer = ctx.authError ? undefined : ctx.viewer;
  if (!viewer) return;
  await Promise.all(
    calls.map(async (call) => {
      const subscriptionId = call.args.subscriptionId;
      const type = call.field.creditType;
      if (typeof subscriptionId !== "string" || !isUuid(subscriptionId) || ctx.charges.knowsBalance(subscriptionId, type)) return;
      const subscription = await ctx.loaders.subscription.load(subscriptionId).catch(() => undefined);
      if (!subscription || (subscription.ownerId !== viewer.id && !viewer.isAdmin)) return;
      const balances = await ctx.loaders.balances.load(subscriptionId).catch(() => undefined);
      const balance = balances?.find((b) => b.creditType === type);
      if (balance && !ctx.charges.knowsBalance(subscriptionId, type)) ctx.charges.noteBalance(subscriptionId, type, balance.balance);
    }),
  );
}

function chargeRecord(call: MeteredCall, price: Price, request: HoldRequest, remaining: number): ChargeRecord {
  return {
    path: call.path,
    operation: call.field.coordinate,
    subscriptionId: request.subscriptionId,
    type: call.field.creditType,
    estimated: price.estimated,
    charged: price.charged,
    actual: null,
    released: 0,
    refunded: 0,
    cost: price.charged,
    remaining,
    entryId: request.entryId,
    adminOverride: price.adminOverride,
    fallback: price.fallback,
  };
}

async function giveBack(taken: Taken): Promise<void> {
  const passes = taken.passes.splice(0);
  const claims = taken.claims.splice(0);
  await Promise.all([
    ...passes.map((pass) => pass?.release()),
    ...claims.map((claim) => claim.abandon().catch(() => undefined)),
  ]);
}

function reportRefusal(deps: ChargeDeps, ctx: RequestContext, err: CreditsError, call: MeteredCall): void {
  if (err.code === "INTERNAL_SERVER_ERROR") return;
  deps.observer.refused({
    requestId: ctx.requestId,
    operation: call.field.coordinate,
    code: err.code,
    message: err.message,
    subscriptionId: typeof call.args.subscriptionId === "string" ? call.args.subscriptionId : undefined,
    creditType: call.field.creditType,
    actorId: ctx.viewer?.id,
    ...(err instanceof InsufficientCreditsError ? { required: err.details.required, available: err.details.available } : {}),
  });
}

function sortByCall(refused: RefusedCall[], calls: MeteredCall[]): RefusedCall[] {
  const order = new Map(calls.map((c, i) => [c.path.join("."), i]));
  return refused.sort((a, b) => (order.get(a.path.join(".")) ?? 0) - (order.get(b.path.join(".")) ?? 0));
}

// ---------------------------------------------------------------------------------------------
// Step 7.

/** 7. Run the resolver of a held call, recording how it ended; a replay returns what the first call returned. */
export async function runHeld(
  held: HeldCall,
  resolve: GraphQLFieldResolver<unknown, unknown>,
  source: unknown,
  args: Record<string, unknown>,
  ctx: RequestContext,
  info: GraphQLResolveInfo,
): Promise<unknown> {
  if (held.replay) {
    // The first call ended in a user-input error and kept its charge: the retry gets that error again.
    if (held.replay.error) throw held.replay.error;
    return held.replay.result;
  }
  try {
    const result = await resolve(source, args, ctx, info);
    // graphql-js takes an Error a resolver returns for that error thrown: so does the charge.
    held.outcome = result instanceof Error ? failedOutcome(result) : { kind: "success", result };
    return result;
  } catch (err) {
    held.outcome = failedOutcome(err);
    throw err;
  }
}

/**
 * How a resolver's error ends its call. Only a user-input error the resolver raised on purpose keeps
 * the charge (the work was attempted). Arguments refused by validation inside the resolver (type-graphql
 * with class-validator validates there, after the hold) are step 2's refusal come late: nothing ran.
 * A refusal of the caller (@Authorized's denial) did no work either; both are refunded, not as system errors.
 */
function failedOutcome(err: unknown): RunOutcome {
  if (isArgumentValidationError(err)) return { kind: "invalid-arguments" };
  if (isUserInputError(err)) return { kind: "user-error", error: err as GraphQLError };
  const refused = refusalCodeOf(err);
  if (refused !== undefined) return { kind: "refused", code: refused };
  return { kind: "system-error", error: err };
}

// ---------------------------------------------------------------------------------------------
// Step 8.

/**
 * The spending rule, the one place it is written: a call costs what its meter measured, at least 1,
 * never more than its hold (what the client previewed). The settlement statement mirrors the cap
 * (it never returns more than the hold).
 */
export function settledCost(held: number, actual: number): number {
  return Math.min(held, Math.max(1, Math.min(actual, held)));
}

/**
 * What became of a held call once the operation's result is known. A refund's `reason` is written to
 * the ledger, which clients read: plain words only. `error` (a system error's cause) goes to the log.
 */
type Verdict = { stands: true; cost: number; actual: number | null } | { stands: false; reason: string; error?: unknown };

/** The ledger's reason for a refunded system error: no error class or message (DESIGN.md, "Errors"). */
const SYSTEM_ERROR_REASON = "system error";

/** The ledger's reason for a call whose arguments failed validation inside its resolver. */
const INVALID_ARGUMENTS_REASON = "invalid arguments: the resolver did not run";

/**
 * Whether a call's result reached the client: `result` (what its resolver returned) is in the
 * response at `path` (not nulled there or above by error propagation), and the client is still there.
 */
export type Delivered = (path: ResponsePath, result: unknown) => boolean;

/** 8. Settle every hold of the request in one statement, once its result is known. */
export async function settleRequest(deps: ChargeDeps, ctx: RequestContext, delivered: Delivered): Promise<void> {
  const calls = ctx.charges.held.splice(0).filter((h) => !h.replay);
  if (calls.length === 0) return;
  const verdicts = calls.map((held) => verdictOf(deps, ctx, held, delivered));
  await storeIdempotentOutcomes(ctx, calls, verdicts);
  const settlements = calls.map((held, i) => settlementOf(ctx, held, verdicts[i]));
  let outcomes;
  try {
    outcomes = await deps.ledger.settle(settlements, { whenSettledLate: reportSettledLate(deps.observer, ctx, calls, verdicts) });
  } catch (err) {
    // The holds stay pending: the ledger settles them in the background once the database answers
    // (the recovery pass refunds them if it never does), and reports them then (reportSettledLate).
    // The caller already has its result, and the hold as its cost for now; what the meter measured
    // is reported all the same.
    calls.forEach((held, i) => {
      const verdict = verdicts[i];
      if (verdict.stands) held.charge.actual = verdict.actual;
      const stage = verdict.stands ? "settle" : "refund";
      deps.observer.transactionFailed({ ...chargeFacts(ctx, held.charge), stage, entryId: held.charge.entryId, amount: held.charge.charged, error: err });
    });
    return;
  }
  calls.forEach((held, i) => recordSettlement(deps, ctx, held, verdicts[i], outcomes[i]));
  await rereadBalancesRefundedElsewhere(ctx, calls.filter((_, i) => !outcomes[i].settled));
}

/** The ledger's reason for a call refunded because its result did not reach the client. */
const NOT_DELIVERED_REASON = "result not delivered";

/**
 * 9. The response never reached the client although its calls were settled as delivered: the client
 * went away while they settled or while the response was written. Each call that cost something is
 * refunded whole (DESIGN.md: callers pay only for results they receive), one refund per call; the
 * response is gone, so nothing reports them but the ledger, the log and the metrics. A refund that
 * fails is logged and counted: the call then stays charged.
 */
export async function refundUndelivered(deps: ChargeDeps, ctx: RequestContext): Promise<void> {
  // Told before the calls settle (a host's connection closed mid-call): they settle as undelivered.
  ctx.charges.responseLost = true;
  const calls = ctx.charges.paidForDelivery.splice(0);
  await Promise.all(calls.map((held) => refundNotDelivered(deps, ctx, held)));
}

async function refundNotDelivered(deps: ChargeDeps, ctx: RequestContext, held: HeldCall): Promise<void> {
  const charge = held.charge;
  const facts = chargeFacts(ctx, charge);
  const request = { entryId: charge.entryId, amount: charge.cost, actorId: null, reason: NOT_DELIVERED_REASON, requestId: ctx.requestId };
  let outcome;
  try {
    outcome = await deps.ledger.refund(request);
  } catch (err) {
    deps.observer.transactionFailed({ ...facts, stage: "refund", entryId: charge.entryId, amount: charge.cost, error: err });
    return;
  }
  if (!outcome.ok) {
    // An admin refunded the call in the meantime: what it has left is no longer its cost.
    ctx.logger.warn({ component: "credits", entryId: charge.entryId, outcome: outcome.reason }, "an undelivered result's refund was refused");
    return;
  }
  charge.refunded += charge.cost;
  charge.cost = 0;
  charge.remaining = outcome.entry.balanceAfter;
  deps.observer.refunded({ ...facts, entryId: charge.entryId, refunded: outcome.entry.amount, remaining: charge.remaining, reason: NOT_DELIVERED_REASON });
}

/**
 * A hold the recovery pass refunded before this request settled it (the call overran
 * CHARGE_SETTLE_TIMEOUT): its credits came back in a statement of the pass, which told this request
 * nothing, so the balance it reports is read afresh. Rare; a failed read keeps the hold's figure.
 */
async function rereadBalancesRefundedElsewhere(ctx: RequestContext, calls: HeldCall[]): Promise<void> {
  if (calls.length === 0) return;
  await Promise.all(
    calls.map(async ({ charge }) => {
      const balances = await ctx.loaders.balances.clear(charge.subscriptionId).load(charge.subscriptionId).catch(() => undefined);
      const now = balances?.find((b) => b.creditType === charge.type);
      if (!now) return;
      charge.remaining = now.balance;
      ctx.charges.noteBalance(charge.subscriptionId, charge.type, now.balance);
    }),
  );
}

function verdictOf(deps: ChargeDeps, ctx: RequestContext, held: HeldCall, delivered: Delivered): Verdict {
  const outcome = held.outcome;
  if (!outcome) return { stands: false, reason: "not run: the operation stopped before this field" };
  if (outcome.kind === "system-error") return { stands: false, reason: SYSTEM_ERROR_REASON, error: outcome.error };
  if (outcome.kind === "invalid-arguments") return { stands: false, reason: INVALID_ARGUMENTS_REASON };
  if (outcome.kind === "refused") return { stands: false, reason: `refused: ${outcome.code}` };
  // A user-input error the resolver raised on purpose: the hold stands as the cost.
  if (outcome.kind === "user-error") return { stands: true, cost: held.charge.charged, actual: null };
  if (!delivered(held.call.path, outcome.result)) return { stands: false, reason: NOT_DELIVERED_REASON };
  if (held.price.adminOverride || !held.call.field.meter) return { stands: true, cost: held.charge.charged, actual: null };
  const actual = measure(deps, ctx, held, outcome.result);
  if (actual === undefined) return { stands: true, cost: held.charge.charged, actual: null };
  return { stands: true, cost: settledCost(held.charge.charged, actual), actual };
}

/** Runs the field's meter; undefined (settle at the hold) when it fails, logged and counted. */
function measure(deps: ChargeDeps, ctx: RequestContext, held: HeldCall, result: unknown): number | undefined {
  const meter = held.call.field.meter!;
  try {
    return normalizeActual(meter.measure(held.validArgs, result));
  } catch (err) {
    deps.observer.meterFailed({ ...chargeFacts(ctx, held.charge), entryId: held.charge.entryId, meter: meter.name, charged: held.charge.charged, error: err });
    return undefined;
  }
}

/**
 * A key whose charge stands remembers its outcome before the settlement statement runs, so a crash
 * in between can only leave the key recorded and the hold refunded by recovery, never a second
 * charge for one key. A key whose hold is refunded is released, so a retry runs afresh.
 */
async function storeIdempotentOutcomes(ctx: RequestContext, calls: HeldCall[], verdicts: Verdict[]): Promise<void> {
  await Promise.all(
    calls.map(async (held, i) => {
      const claim = held.claim;
      if (!claim) return;
      const verdict = verdicts[i];
      if (!verdict.stands) return claim.abandon().catch(() => undefined);
      const released = held.charge.charged - verdict.cost;
      const settled: ChargeRecord = { ...held.charge, actual: verdict.actual, released, cost: verdict.cost, remaining: held.charge.remaining + released };
      const outcome = held.outcome!;
      const stored = outcome.kind === "user-error" ? claim.completeWithError(outcome.error, settled) : claim.complete((outcome as { result: unknown }).result, settled);
      await stored.catch((err) => ctx.logger.error({ err }, "could not store the idempotent outcome"));
    }),
  );
}

function settlementOf(ctx: RequestContext, held: HeldCall, verdict: Verdict): Settlement {
  const base = { subscriptionId: held.charge.subscriptionId, entryId: held.charge.entryId, actorId: null, requestId: ctx.requestId };
  if (!verdict.stands) return { ...base, kind: "void", reason: verdict.reason };
  const release = held.charge.charged - verdict.cost;
  return release > 0 ? { ...base, kind: "release", amount: release } : { ...base, kind: "post" };
}

const MARK_MISSING =
  "its pending mark was deleted outside the server and no REFUND of it exists: the hold stands as its cost, and no RELEASE was written";

/** A settlement written in time: its charge record and the request's balances updated, and reported. */
function recordSettlement(deps: ChargeDeps, ctx: RequestContext, held: HeldCall, verdict: Verdict, outcome: SettlementOutcome): void {
  const charge = held.charge;
  const returned = reportSettlement(deps.observer, chargeFacts(ctx, charge), charge, verdict, outcome);
  // A hold whose mark was removed by hand stands charged: like a settled one, it is paid for delivery.
  if (!outcome.settled && !outcome.markMissing) return;
  // A settlement that returned nothing changed no balance: what it knows is its own hold's figure,
  // older than another field's release in the same statement, so it is not the request's latest.
  if (returned > 0) {
    ctx.charges.noteBalance(charge.subscriptionId, charge.type, charge.remaining);
    ctx.loaders.balances.clear(charge.subscriptionId);
  }
  // A stored outcome reaches the client on a retry with its key, delivered or not this time.
  if (verdict.stands && charge.cost > 0 && !held.claim) ctx.charges.paidForDelivery.push(held);
}

/**
 * What the ledger will call once it writes, in the background, the settlements this request could
 * not wait for (the database was away for longer than the retries): each call is logged and counted
 * as it would have been in time (DESIGN.md, charge path step 9). The response is gone by then, so
 * only the observer hears of it; the callback keeps each call's facts and a copy of its charge
 * record, not the request (its loaders, results and response may wait here up to 25 minutes).
 */
function reportSettledLate(observer: ChargeObserver, ctx: RequestContext, calls: HeldCall[], verdicts: Verdict[]): (outcomes: SettlementOutcome[]) => void {
  // A loop, not map callbacks: a closure over `ctx` here would keep it alive with the one returned.
  const facts: ChargeFacts[] = [];
  const charges: ChargeRecord[] = [];
  for (const held of calls) {
    facts.push(chargeFacts(ctx, held.charge));
    charges.push(held.charge);
  }
  return (outcomes) => {
    outcomes.forEach((outcome, i) => reportSettlement(observer, facts[i], { ...charges[i] }, verdicts[i], outcome));
  };
}

/**
 * A settlement's outcome, in time or late: `charge` updated to what the ledger now says, and the
 * observer told (settled, refunded, or a late settlement of a hold the recovery pass refunded
 * first). Returns the credits the settlement gave back.
 */
function reportSettlement(observer: ChargeObserver, facts: ChargeFacts, charge: ChargeRecord, verdict: Verdict, outcome: SettlementOutcome): number {
  if (!outcome.settled && outcome.markMissing) {
    // Its pending mark was removed outside the server and nothing refunded it: nothing was written,
    // so the hold stands as the cost (refundCharge can give it back). Told as a failed settlement.
    if (verdict.stands) charge.actual = verdict.actual;
    observer.transactionFailed({ ...facts, stage: "settle", entryId: charge.entryId, amount: charge.charged, error: new Error(MARK_MISSING) });
    return 0;
  }
  if (!outcome.settled) {
    // The recovery pass refunded the hold first. For a call whose cost stood, it ran for free.
    charge.refunded = charge.charged;
    charge.cost = 0;
    if (verdict.stands) observer.lateSettlement({ ...facts, entryId: charge.entryId, charged: charge.charged });
    return 0;
  }
  const returned = outcome.returned ?? (verdict.stands ? charge.charged - verdict.cost : charge.charged);
  if (outcome.balanceAfter !== undefined) charge.remaining = outcome.balanceAfter;
  else charge.remaining += returned;
  if (!verdict.stands) {
    charge.refunded = returned;
    charge.cost = charge.charged - charge.released - charge.refunded;
    observer.refunded({ ...facts, entryId: charge.entryId, refunded: returned, remaining: charge.remaining, reason: verdict.reason, error: verdict.error });
    return returned;
  }
  charge.actual = verdict.actual;
  charge.released = returned;
  charge.cost = charge.charged - charge.released - charge.refunded;
  observer.settled({ ...facts, entryId: charge.entryId, charged: charge.charged, estimated: charge.estimated, actual: verdict.actual, cost: charge.cost, released: charge.released });
  if (verdict.actual !== null && verdict.actual > charge.charged) {
    observer.actualCostMismatch({ ...facts, entryId: charge.entryId, charged: charge.charged, actual: verdict.actual });
  }
  return returned;
}

/** What every event about a recorded charge says: who, which request, which balance. */
/**
 * A replay charges nothing and emits no charge event, but support follows a customer's request id to
 * the charge it was answered with: one line ties this request to the entry it replayed.
 */
function logReplay(ctx: RequestContext, charge: ChargeRecord): void {
  ctx.logger.info(
    { event: "credits.replayed", ...chargeFacts(ctx, charge), entryId: charge.entryId, cost: charge.cost },
    "metered call replayed from its Idempotency-Key",
  );
}

function chargeFacts(ctx: RequestContext, charge: ChargeRecord): ChargeFacts {
  return {
    requestId: ctx.requestId,
    operation: charge.operation,
    subscriptionId: charge.subscriptionId,
    creditType: charge.type,
    actorId: ctx.viewer?.id ?? "",
  };
}
