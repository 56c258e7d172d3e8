/**
 * What admins run the business with: open subscriptions, change their status, grant, adjust and
 * refund credits, and audit the ledger. Every field is admin-only (FORBIDDEN otherwise), validates
 * its input before it touches the database, changes balances in one statement or transaction, and
 * writes a ledger entry naming the admin (token subject), the reason and the request id.
 */
import type { GraphQLResolveInfo } from "graphql";
import { Arg, Ctx, ID, Info, Mutation, Query, Resolver } from "type-graphql";
import { requireAdmin } from "../../admin/require-admin.js";
import {
  requireCreditType,
  requireName,
  requireReason,
  requireRoomForFirstPeriod,
  requireUserId,
  requireWellFormedId,
  validateInitialCredits,
} from "../../admin/admin-input.js";
import { changeCredits, MAX_BALANCE } from "../../admin/change-credits.js";
import { freezeSubscription } from "../../admin/frozen-answer.js";
import { idempotentMutation } from "../../admin/idempotent-mutation.js";
import { refundCharge } from "../../admin/refund.js";
import { BadUserInputError, CreditsError, InternalError, NotFoundError } from "../../errors/errors.js";
import type { LedgerEntryRecord } from "../../ledger/entry.js";
import { openSubscription, setSubscriptionStatus, type SubscriptionRecord } from "../../subscriptions/subscription-store.js";
import type { RequestContext } from "../context.js";
import { toLedgerEntry } from "../mappers/ledger-entry.js";
import { AdjustCreditsInput, CreateSubscriptionInput, GrantCreditsInput, RefundChargeInput } from "../types/admin-inputs.js";
import { LedgerAuditReport } from "../types/audit.js";
import { SubscriptionStatus } from "../types/enums.js";
import { LedgerEntry } from "../types/ledger.js";
import { BillingSubscription } from "../types/subscription.js";
import { toBillingSubscription } from "./viewer-resolver.js";
import { quoteId } from "../../util/quote-id.js";
import { grantWithTerms } from "../../grants/grant-credits.js";
import { validateGrantTerms } from "../../grants/grant-input.js";
import { auditLedgerAndGrants, type FullAuditReport } from "../../grants/grant-audit.js";
import { LEDGER_AUDIT_TIMEOUT_FACTOR, runReport } from "../../db/report-gate.js";
import { statementTimedOut } from "../../db/statement-timeout.js";
import { findPlan } from "../../plans/plan-config.js";
import { startMissingPeriods } from "../../plans/plan-periods.js";

/** NOT_FOUND unless the subscription exists; read through the request's loader. */
async function requireSubscription(ctx: RequestContext, id: string): Promise<void> {
  requireWellFormedId(id, "Subscription");
  if (!(await ctx.loaders.subscription.load(id))) throw new NotFoundError(`Subscription ${quoteId(id)} does not exist`);
}

/** A subscription mutation's stored value: the row, and with an Idempotency-Key what its nested fields showed (frozen-answer.ts). */
type AnsweredSubscription = SubscriptionRecord & Pick<BillingSubscription, "frozen">;

/**
 * The field's answer from a subscription mutation's value. The request's loader gets the plain row:
 * the frozen fields belong to this field's answer, not to other fields that read the subscription.
 */
function answerSubscription(ctx: RequestContext, { frozen, ...row }: AnsweredSubscription): BillingSubscription {
  ctx.loaders.subscription.prime(row.id, row);
  return { ...toBillingSubscription(row), frozen };
}

/**
 * The ledger audit, as a report (src/db/report-gate.ts): through the instance's report gate, bounded
 * by LEDGER_AUDIT_TIMEOUT_FACTOR × REPORT_QUERY_TIMEOUT, since it reads the whole ledger by design.
 * Cancelled there, it is INTERNAL_SERVER_ERROR: the admin has no window to narrow, the operator has
 * a setting to raise, and the log line says which.
 */
async function auditReport(ctx: RequestContext): Promise<FullAuditReport> {
  const timeoutMs = ctx.services.config.REPORT_QUERY_TIMEOUT * LEDGER_AUDIT_TIMEOUT_FACTOR;
  try {
    return await runReport(ctx.services, timeoutMs, (tx) => auditLedgerAndGrants(tx));
  } catch (err) {
    if (!statementTimedOut(err)) throw err;
    throw new InternalError(
      `ledgerAudit was cancelled after ${timeoutMs} ms (${LEDGER_AUDIT_TIMEOUT_FACTOR} × REPORT_QUERY_TIMEOUT): raise REPORT_QUERY_TIMEOUT for a ledger this large`,
      { cause: err },
    );
  }
}

/** One structured log line per admin change, with who did it and why. */
function logAdminChange(ctx: RequestContext, event: string, facts: Record<string, unknown>, message: string): void {
  ctx.logger.info({ component: "admin", event, actorId: ctx.viewer?.id, ...facts }, message);
}

function logEntry(ctx: RequestContext, event: string, entry: LedgerEntryRecord, message: string): void {
  logAdminChange(
    ctx,
    event,
    {
      entryId: entry.id,
      subscriptionId: entry.subscriptionId,
      creditType: entry.creditType,
      amount: entry.amount,
      balanceAfter: entry.balanceAfter,
      reason: entry.reason,
      refundOf: entry.refundOf,
    },
    message,
  );
}

@Resolver()
export class AdminResolver {
  @Mutation(() => BillingSubscription, { description: "Admin only: opens a subscription for a user, optionally with starting credits." })
  async createSubscription(
    @Arg("input", () => CreateSubscriptionInput, { description: "The owner, the plan and the starting credits." })
    input: CreateSubscriptionInput,
    @Ctx() ctx: RequestContext,
    @Info() info: GraphQLResolveInfo,
  ): Promise<BillingSubscription> {
    const admin = requireAdmin(ctx, "open subscriptions");
    const ownerId = requireUserId(input.ownerId, "ownerId");
    const plan = requireName(input.plan, "plan");
    const initialCredits = validateInitialCredits(input.initialCredits);
    const planDefinition = findPlan(ctx.services.config.plans, plan);
    requireRoomForFirstPeriod(initialCredits, planDefinition, MAX_BALANCE);
    const { value: answered, replayed } = await idempotentMutation<AnsweredSubscription>(
      ctx,
      info,
      (db) => openSubscription(db, { ownerId, plan, initialCredits, actorId: admin.id, requestId: ctx.requestId, planDefinition }),
      // A replay shows the balances and grants the subscription was opened with, not today's.
      freezeSubscription,
    );
    const subscription = answerSubscription(ctx, answered);
    if (!replayed) logAdminChange(ctx, "admin.subscription_created", { subscriptionId: subscription.id, ownerId, plan, initialCredits }, "subscription opened");
    return subscription;
  }

  @Mutation(() => BillingSubscription, {
    description: "Admin only: activates, suspends or cancels a subscription. Only ACTIVE subscriptions can spend.",
  })
  async setSubscriptionStatus(
    @Arg("id", () => ID, { description: "The subscription." }) id: string,
    @Arg("status", () => SubscriptionStatus, { description: "The new status." }) status: SubscriptionStatus,
    @Arg("reason", () => String, { description: "Why; kept with the subscription and logged." }) reason: string,
    @Ctx() ctx: RequestContext,
    @Info() info: GraphQLResolveInfo,
  ): Promise<BillingSubscription> {
    requireAdmin(ctx, "change a subscription's status");
    requireWellFormedId(id, "Subscription");
    const why = requireReason(reason);
    const { value: answered, replayed } = await idempotentMutation<AnsweredSubscription>(
      ctx,
      info,
      async (db) => {
        const changed = await setSubscriptionStatus(db, id, status, why);
        if (!changed) throw new NotFoundError(`Subscription ${quoteId(id)} does not exist`);
        // A cancelled subscription's plan period was closed at its end: reactivated, it starts a new one.
        if (status !== SubscriptionStatus.CANCELLED) await startMissingPeriods(db, ctx.services.config.plans, { onlySubscriptionId: id });
        return changed;
      },
      freezeSubscription,
    );
    ctx.loaders.subscription.clear(id);
    const subscription = answerSubscription(ctx, answered);
    if (!replayed) logAdminChange(ctx, "admin.subscription_status", { subscriptionId: id, status, reason: why }, "subscription status changed");
    return subscription;
  }

  @Mutation(() => LedgerEntry, { description: "Admin only: adds credits to a balance." })
  async grantCredits(
    @Arg("input", () => GrantCreditsInput, { description: "The balance, the credits and why." }) input: GrantCreditsInput,
    @Ctx() ctx: RequestContext,
    @Info() info: GraphQLResolveInfo,
  ): Promise<LedgerEntry> {
    const admin = requireAdmin(ctx, "grant credits");
    const type = requireCreditType(input.type);
    if (!Number.isInteger(input.amount) || input.amount <= 0) {
      throw new BadUserInputError("amount must be a positive whole number of credits; use adjustCredits to take credits away", "amount");
    }
    const reason = requireReason(input.reason);
    const terms = validateGrantTerms(input);
    await requireSubscription(ctx, input.subscriptionId);
    const { value: entry, replayed } = await idempotentMutation(ctx, info, (db) =>
      changeCredits(
        db,
        {
        subscriptionId: input.subscriptionId,
        creditType: type,
        kind: "GRANT",
        delta: input.amount,
        actorId: admin.id,
        reason,
        requestId: ctx.requestId,
        },
        (tx, change) => grantWithTerms(tx, change, terms),
      ),
    );
    ctx.loaders.balances.clear(entry.subscriptionId);
    if (!replayed) logEntry(ctx, "admin.credits_granted", entry, "credits granted");
    return toLedgerEntry(entry);
  }

  @Mutation(() => LedgerEntry, { description: "Admin only: corrects a balance up or down; never below zero." })
  async adjustCredits(
    @Arg("input", () => AdjustCreditsInput, { description: "The balance, the signed change and why." }) input: AdjustCreditsInput,
    @Ctx() ctx: RequestContext,
    @Info() info: GraphQLResolveInfo,
  ): Promise<LedgerEntry> {
    const admin = requireAdmin(ctx, "adjust credits");
    const type = requireCreditType(input.type);
    if (!Number.isInteger(input.delta) || input.delta === 0) {
      throw new BadUserInputError("delta must be a whole number of credits other than 0", "delta");
    }
    const reason = requireReason(input.reason);
    await requireSubscription(ctx, input.subscriptionId);
    const { value: entry, replayed } = await idempotentMutation(ctx, info, (db) =>
      changeCredits(db, {
        subscriptionId: input.subscriptionId,
        creditType: type,
        kind: "ADJUSTMENT",
        delta: input.delta,
        actorId: admin.id,
        reason,
        requestId: ctx.requestId,
      }),
    );
    ctx.loaders.balances.clear(entry.subscriptionId);
    if (!replayed) logEntry(ctx, "admin.credits_adjusted", entry, "credits adjusted");
    return toLedgerEntry(entry);
  }

  @Mutation(() => LedgerEntry, { description: "Admin only: returns all or part of a debit." })
  async refundCharge(
    @Arg("input", () => RefundChargeInput, { description: "The debit, how much of it and why." }) input: RefundChargeInput,
    @Ctx() ctx: RequestContext,
    @Info() info: GraphQLResolveInfo,
  ): Promise<LedgerEntry> {
    const admin = requireAdmin(ctx, "refund charges");
    requireWellFormedId(input.entryId, "Ledger entry");
    const amount = input.amount ?? undefined;
    if (amount !== undefined && (!Number.isInteger(amount) || amount <= 0)) {
      throw new BadUserInputError("amount must be a positive whole number of credits; leave it out to refund the rest", "amount");
    }
    const reason = requireReason(input.reason);
    let entry: LedgerEntryRecord;
    let replayed: boolean;
    try {
      ({ value: entry, replayed } = await idempotentMutation(ctx, info, (db) =>
        refundCharge(db, {
          entryId: input.entryId,
          amount,
          actorId: admin.id,
          reason,
          requestId: ctx.requestId,
        }),
      ));
    } catch (err) {
      if (err instanceof CreditsError) throw err;
      // Reported like any refund that fails on the database (log line, FAILED_TRANSACTION alert).
      ctx.services.observer.transactionFailed({
        requestId: ctx.requestId,
        operation: "Mutation.refundCharge",
        stage: "refund",
        entryId: input.entryId,
        actorId: admin.id,
        amount,
        error: err,
      });
      throw new InternalError("The refund failed on the database", { cause: err });
    }
    ctx.loaders.balances.clear(entry.subscriptionId);
    // A replay refunded nothing now: it is not counted again.
    if (!replayed) ctx.services.observer.refunded({
      requestId: ctx.requestId,
      operation: entry.operation ?? "unknown",
      subscriptionId: entry.subscriptionId,
      creditType: entry.creditType,
      actorId: admin.id,
      entryId: input.entryId,
      refunded: entry.amount,
      remaining: entry.balanceAfter,
      reason,
    });
    return toLedgerEntry(entry);
  }

  @Query(() => LedgerAuditReport, { description: "Admin only: checks that every balance equals the sum of its ledger entries." })
  async ledgerAudit(@Ctx() ctx: RequestContext): Promise<LedgerAuditReport> {
    requireAdmin(ctx, "audit the ledger");
    const report = await auditReport(ctx);
    if (!report.ok) {
      ctx.logger.warn(
        { component: "admin", event: "ledger.audit_mismatch", mismatches: report.mismatches, grantMismatches: report.grantMismatches },
        "ledger audit found mismatches",
      );
    }
    return {
      checkedBalances: report.checkedBalances,
      ok: report.ok,
      mismatches: report.mismatches.map((m) => ({
        subscriptionId: m.subscriptionId,
        type: m.creditType,
        balance: m.balance,
        ledgerSum: withinIntRange(m.ledgerSum),
      })),
    };
  }
}

/**
 * A ledger sum as GraphQL's Int can carry it: a balance is at most 2^31 − 1, so a ledger whose sum
 * is beyond Int's range was changed outside the server, and the audit exists to report exactly that.
 * Serialized as it is, it failed the whole answer (500, the mismatch lost); it is shown at the range's
 * end instead, and the `ledger.audit_mismatch` log line keeps the exact sum.
 */
function withinIntRange(sum: number): number {
  return Math.max(-2_147_483_648, Math.min(2_147_483_647, sum));
}
