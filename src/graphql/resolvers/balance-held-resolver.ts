/** CreditBalance.held: credits taken from the balance by holds whose calls have not settled yet. */
import { Ctx, FieldResolver, Int, Resolver, Root } from "type-graphql";
import type { RequestContext } from "../context.js";
import { CreditBalance } from "../types/subscription.js";

@Resolver(() => CreditBalance)
export class BalanceHeldResolver {
  @FieldResolver(() => Int, { description: "Credits held by calls still running (already taken from balance)." })
  async held(@Root() balance: CreditBalance, @Ctx() ctx: RequestContext): Promise<number> {
    if (balance.frozen) return balance.frozen.held;
    if (!balance.subscriptionId) return 0;
    return (await ctx.loaders.held.load(balance.subscriptionId)).get(balance.type) ?? 0;
  }
}
