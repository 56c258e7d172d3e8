/** creditUsage (one subscription, owner or admin) and creditStats (all subscriptions, admin only): debits grouped, net of refunds. */
import { Arg, Ctx, ID, Query, Resolver } from "type-graphql";
import { ForbiddenError } from "../../errors/errors.js";
import { usageFigures } from "../../ledger/usage.js";
import { checkTimeWindow } from "../../util/time-window.js";
import { requireViewer, type RequestContext } from "../context.js";
import { UsageGroupBy } from "../types/enums.js";
import { UsageBucket } from "../types/usage.js";
import { loadReadableSubscription } from "./viewer-resolver.js";

const GROUP_BY = { description: "How to group the debits." };
const FROM = { nullable: true, description: "Only debits at or after this time." };
const TO = { nullable: true, description: "Only debits before this time." };

@Resolver()
export class UsageResolver {
  @Query(() => [UsageBucket], { description: "A subscription's usage, grouped." })
  async creditUsage(
    @Arg("subscriptionId", () => ID, { description: "The subscription; the caller must own it or be an admin." }) subscriptionId: string,
    @Arg("groupBy", () => UsageGroupBy, GROUP_BY) groupBy: UsageGroupBy,
    @Arg("from", () => Date, FROM) from: Date | null,
    @Arg("to", () => Date, TO) to: Date | null,
    @Ctx() ctx: RequestContext,
  ): Promise<UsageBucket[]> {
    requireViewer(ctx);
    const window = checkTimeWindow(from, to);
    await loadReadableSubscription(ctx, subscriptionId);
    return usageFigures(ctx.services.db, { grouping: groupBy, subscriptionId, ...window });
  }

  @Query(() => [UsageBucket], { description: "Admin only: usage across all subscriptions, grouped." })
  async creditStats(
    @Arg("groupBy", () => UsageGroupBy, GROUP_BY) groupBy: UsageGroupBy,
    @Arg("from", () => Date, FROM) from: Date | null,
    @Arg("to", () => Date, TO) to: Date | null,
    @Ctx() ctx: RequestContext,
  ): Promise<UsageBucket[]> {
    const viewer = requireViewer(ctx);
    if (!viewer.isAdmin) throw new ForbiddenError("creditStats is for admins only; use creditUsage for your own subscription");
    const window = checkTimeWindow(from, to);
    return usageFigures(ctx.services.db, { grouping: groupBy, ...window });
  }
}
