/**
 * Low-balance thresholds: setLowBalanceThreshold (owner or admin) and CreditBalance.lowBalanceThreshold.
 * The crossings themselves are derived by the ledger trigger (drizzle/0004), not here.
 */
import DataLoader from "dataloader";
import type { GraphQLResolveInfo } from "graphql";
import { Arg, Ctx, FieldResolver, Info, Int, Mutation, Resolver, Root } from "type-graphql";
import { freezeBalance } from "../../admin/frozen-answer.js";
import { idempotentMutation } from "../../admin/idempotent-mutation.js";
import { requireCreditType } from "../../admin/admin-input.js";
import { BadUserInputError, NotFoundError } from "../../errors/errors.js";
import { balancesOfSubscriptions } from "../../ledger/balances.js";
import { thresholdsOf, writeLowBalanceThreshold } from "../../live/live-store.js";
import { requireViewer, type RequestContext } from "../context.js";
import { LowBalanceThresholdInput } from "../types/live-balance.js";
import { CreditBalance } from "../types/subscription.js";
import { loadReadableSubscription } from "./viewer-resolver.js";
import { retryOnLostConnection } from "../../db/lost-connection-retry.js";

/** Per request: every balance's threshold read in one query per tick, however many balances are shown. */
const thresholdLoaders = new WeakMap<RequestContext, DataLoader<string, Map<string, number>>>();

function thresholdLoader(ctx: RequestContext): DataLoader<string, Map<string, number>> {
  let loader = thresholdLoaders.get(ctx);
  if (!loader) {
    loader = new DataLoader(async (ids) => {
      const rows = await retryOnLostConnection(() => thresholdsOf(ctx.services.db, ids));
      return ids.map((id) => new Map(rows.filter((r) => r.subscriptionId === id).map((r) => [r.creditType, r.lowBalance])));
    });
    thresholdLoaders.set(ctx, loader);
  }
  return loader;
}

/**
 * setLowBalanceThreshold's work. With an Idempotency-Key the write runs inside the key's transaction
 * (src/admin/idempotent-mutation.ts), so a retried webhook or double click sets it once.
 */
export async function applyLowBalanceThreshold(
  ctx: RequestContext,
  info: GraphQLResolveInfo,
  input: LowBalanceThresholdInput,
): Promise<CreditBalance> {
  requireViewer(ctx);
  const type = requireCreditType(input.type, "type");
  if (!Number.isInteger(input.lowBalance) || input.lowBalance < 0) {
    throw new BadUserInputError("lowBalance must be a whole number of credits, 0 or more (0 turns the notification off)", "lowBalance");
  }
  const subscription = await loadReadableSubscription(ctx, input.subscriptionId);
  const lowBalance = input.lowBalance === 0 ? null : input.lowBalance;
  const { value: balance, replayed } = await idempotentMutation(
    ctx,
    info,
    async (db) => {
      await writeLowBalanceThreshold(db, { subscriptionId: subscription.id, creditType: type, lowBalance });
      const row = (await balancesOfSubscriptions(db, [subscription.id])).find((b) => b.creditType === type);
      if (!row) throw new NotFoundError(`Subscription ${subscription.id} has no ${type} balance`);
      return { type, balance: row.balance, updatedAt: row.updatedAt, subscriptionId: subscription.id };
    },
    // A replay shows the threshold this call set, not one set since.
    freezeBalance,
  );
  if (!replayed) ctx.logger.info(
    { component: "live", event: "live.threshold_set", actorId: ctx.viewer?.id, subscriptionId: subscription.id, creditType: type, lowBalance },
    lowBalance === null ? "low-balance notification turned off" : "low-balance threshold set",
  );
  thresholdLoader(ctx).clear(subscription.id);
  // The arguments name the balance (a replay's are the first call's); a key stored before answers were
  // frozen holds only { balance, updatedAt }.
  return { ...balance, type, subscriptionId: subscription.id };
}

@Resolver(() => CreditBalance)
export class ThresholdResolver {
  @Mutation(() => CreditBalance, { description: "Owner or admin: sets the low-balance threshold of one balance (0 turns it off)." })
  setLowBalanceThreshold(
    @Arg("input", () => LowBalanceThresholdInput, { description: "The balance and its threshold." }) input: LowBalanceThresholdInput,
    @Ctx() ctx: RequestContext,
    @Info() info: GraphQLResolveInfo,
  ): Promise<CreditBalance> {
    return applyLowBalanceThreshold(ctx, info, input);
  }

  @FieldResolver(() => Int, { nullable: true, description: "Low-balance notification threshold; null when off." })
  async lowBalanceThreshold(@Root() balance: CreditBalance, @Ctx() ctx: RequestContext): Promise<number | null> {
    if (balance.frozen) return balance.frozen.lowBalanceThreshold;
    if (!balance.subscriptionId) return null;
    return (await thresholdLoader(ctx).load(balance.subscriptionId)).get(balance.type) ?? null;
  }
}
