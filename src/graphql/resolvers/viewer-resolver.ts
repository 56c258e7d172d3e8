/** The caller, their subscriptions and a subscription's balances. */
import { Arg, Ctx, FieldResolver, ID, Query, Resolver, Root } from "type-graphql";
import { ForbiddenError, NotFoundError } from "../../errors/errors.js";
import { subscriptionsOfOwner, type SubscriptionRecord } from "../../subscriptions/subscription-store.js";
import { isUuid } from "../../util/uuid.js";
import { requireViewer, type RequestContext } from "../context.js";
import { BillingSubscription, CreditBalance, ViewerType } from "../types/subscription.js";
import { SubscriptionStatus } from "../types/enums.js";
import { quoteId } from "../../util/quote-id.js";
import { retryOnLostConnection } from "../../db/lost-connection-retry.js";

export function toBillingSubscription(row: SubscriptionRecord): BillingSubscription {
  return {
    id: row.id,
    ownerId: row.ownerId,
    plan: row.plan,
    status: row.status as SubscriptionStatus,
    statusReason: row.statusReason,
    createdAt: row.createdAt,
  };
}

/**
 * Loads a subscription the caller may see: NOT_FOUND when it does not exist, FORBIDDEN unless the
 * caller owns it or is an admin. Shared by every query that takes a subscription id.
 */
export async function loadReadableSubscription(ctx: RequestContext, id: string): Promise<SubscriptionRecord> {
  const row = isUuid(id) ? await ctx.loaders.subscription.load(id) : undefined;
  return readableSubscription(ctx, id, row);
}

/** The check of loadReadableSubscription on a row the caller already read (undefined: none exists). */
export function readableSubscription(ctx: RequestContext, id: string, row: SubscriptionRecord | undefined): SubscriptionRecord {
  const viewer = requireViewer(ctx);
  if (!row) throw new NotFoundError(`Subscription ${quoteId(id)} does not exist`);
  if (row.ownerId !== viewer.id && !viewer.isAdmin) throw new ForbiddenError("You may only see your own subscriptions");
  return row;
}

@Resolver(() => ViewerType)
export class ViewerResolver {
  @Query(() => ViewerType, { description: "The authenticated caller and the subscriptions they own." })
  viewer(@Ctx() ctx: RequestContext): ViewerType {
    const viewer = requireViewer(ctx);
    return { id: viewer.id, isAdmin: viewer.isAdmin };
  }

  @FieldResolver(() => [BillingSubscription], { description: "Subscriptions the caller owns." })
  async subscriptions(@Root() viewer: ViewerType, @Ctx() ctx: RequestContext): Promise<BillingSubscription[]> {
    const rows = await retryOnLostConnection(() => subscriptionsOfOwner(ctx.services.db, viewer.id));
    for (const row of rows) ctx.loaders.subscription.prime(row.id, row);
    return rows.map(toBillingSubscription);
  }
}

@Resolver(() => BillingSubscription)
export class SubscriptionResolver {
  @Query(() => BillingSubscription, {
    description: "One subscription. NOT_FOUND if it does not exist, FORBIDDEN unless the caller owns it or is an admin.",
  })
  async subscription(
    @Arg("id", () => ID, { description: "The subscription's id." }) id: string,
    @Ctx() ctx: RequestContext,
  ): Promise<BillingSubscription> {
    return toBillingSubscription(await loadReadableSubscription(ctx, id));
  }

  @FieldResolver(() => [CreditBalance], { description: "One balance per credit type." })
  async balances(@Root() subscription: BillingSubscription, @Ctx() ctx: RequestContext): Promise<CreditBalance[]> {
    if (subscription.frozen) return subscription.frozen.balances;
    const rows = await ctx.loaders.balances.load(subscription.id);
    return rows.map((r) => ({ type: r.creditType, balance: r.balance, updatedAt: r.updatedAt, subscriptionId: r.subscriptionId }));
  }
}
