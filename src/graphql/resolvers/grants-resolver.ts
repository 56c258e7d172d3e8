/**
 * Grants and plans in the schema: a subscription's grants (in spending order) and current plan
 * period, the draws of a ledger entry, and the configured plans. Everything is read through the
 * request's DataLoaders, so a list of subscriptions or a ledger page costs one query per field.
 */
import type { GraphQLResolveInfo } from "graphql";
import { Arg, Ctx, FieldResolver, Info, Query, Resolver, Root } from "type-graphql";
import { requireCreditType } from "../../admin/admin-input.js";
import type { GrantRecord } from "../../grants/grant-store.js";
import { refuseFailedCredentials } from "../../credits/credits-request.js";
import { grantsSomething, type PlanDefinition } from "../../plans/plan-config.js";
import type { RequestContext } from "../context.js";
import { GrantCategory } from "../types/enums.js";
import { CreditGrant, GrantDraw, Plan } from "../types/grants.js";
import { LedgerEntry } from "../types/ledger.js";
import { BillingSubscription } from "../types/subscription.js";

export function toCreditGrant(record: GrantRecord): CreditGrant {
  return {
    id: record.id,
    subscriptionId: record.subscriptionId,
    type: record.creditType,
    category: record.category as GrantCategory,
    amount: record.amount,
    remaining: record.remaining,
    priority: record.priority,
    effectiveAt: record.effectiveAt,
    expiresAt: record.expiresAt,
    reason: record.reason,
    createdAt: record.createdAt,
  };
}

export function toPlan(plan: PlanDefinition): Plan {
  return {
    name: plan.name,
    // A plan that grants nothing has no periods, whatever `period` its configuration gives it.
    period: grantsSomething(plan) ? plan.period.text : "",
    allowances: plan.allowances.map((a) => ({ type: a.type, amount: a.allowance, rolloverMax: a.rolloverMax })),
  };
}

/** A subscription's grants: as an idempotent mutation answered them (src/admin/frozen-answer.ts), else as they are now. */
async function grantsOf(subscription: BillingSubscription, ctx: RequestContext, includeSpent: boolean): Promise<CreditGrant[]> {
  if (subscription.frozen) return includeSpent ? subscription.frozen.grants : subscription.frozen.spendableGrants;
  const loader = includeSpent ? ctx.loaders.grants.all : ctx.loaders.grants.spendable;
  return (await loader.load(subscription.id)).map(toCreditGrant);
}

@Resolver(() => BillingSubscription)
export class SubscriptionGrantsResolver {
  @FieldResolver(() => [CreditGrant], {
    description: "Grants with credits left, in the order they are spent; includeSpent adds the empty and expired ones.",
  })
  async grants(
    @Root() subscription: BillingSubscription,
    @Ctx() ctx: RequestContext,
    @Arg("type", () => String, { nullable: true, description: "Only grants of this credit type." }) type?: string | null,
    @Arg("includeSpent", () => Boolean, { nullable: true, defaultValue: false, description: "Also list empty and expired grants." })
    includeSpent?: boolean | null,
  ): Promise<CreditGrant[]> {
    if (type !== undefined && type !== null) requireCreditType(type, "type");
    const grants = await grantsOf(subscription, ctx, includeSpent ?? false);
    return grants.filter((g) => type === undefined || type === null || g.type === type);
  }

  @FieldResolver(() => Date, { nullable: true, description: "End of the current plan period; null when the plan grants nothing." })
  async currentPeriodEnd(@Root() subscription: BillingSubscription, @Ctx() ctx: RequestContext): Promise<Date | null> {
    if (subscription.frozen) return subscription.frozen.currentPeriodEnd;
    return ctx.loaders.grants.periodEnd.load(subscription.id);
  }
}

@Resolver(() => LedgerEntry)
export class LedgerDrawsResolver {
  @FieldResolver(() => [GrantDraw], { description: "The grants this entry took credits from or gave them back to." })
  async draws(@Root() entry: LedgerEntry, @Ctx() ctx: RequestContext, @Info() info: GraphQLResolveInfo): Promise<GrantDraw[]> {
    const ref = { subscriptionId: entry.subscriptionId, entryId: entry.id };
    // A live event's entry: read once for all its subscribers (the request's loaders are per subscriber).
    if (info.operation.operation === "subscription" && ctx.services.live) return ctx.services.live.draws(ref);
    return ctx.loaders.grants.draws.load(ref);
  }
}

@Resolver()
export class PlansResolver {
  @Query(() => [Plan], { description: "The plans this server knows, from its configuration (PLANS / PLANS_FILE). Needs no token; a token that fails verification is refused (401)." })
  plans(@Ctx() ctx: RequestContext): Plan[] {
    refuseFailedCredentials(ctx);
    return ctx.services.config.plans.map(toPlan);
  }
}
