/**
 * The wrapper around every @credits field's resolver (DESIGN.md, "The charge path"). It runs outside
 * type-graphql's middleware (it is a mapSchema wrapper), so the phases it calls authenticate and
 * authorize by themselves before anything is held.
 *
 * A field the operation plan priced up front was held with the rest of its operation before
 * execution started (operation-charges.ts); it finds its hold by response path and only runs. A
 * field that could not be priced up front (inside a list) goes through steps 1–6 alone when it is
 * reached. Either way its hold is settled once the operation's result is known (step 8).
 */
import type { GraphQLResolveInfo } from "graphql";
import { contextIsRequest, responsePath, responsePathKey, type CreditsRequest as RequestContext, type RequestOf } from "./credits-request.js";
import { chargeCalls, runHeld, type ChargeDeps, type HeldCall } from "./charge-phases.js";
import type { MeteredResolverWrapper } from "./credits-directive.js";

export type ChargeWrapperDeps = ChargeDeps;

/** `requestOf` finds the credits state of the host's context (convention 10). */
export function createChargeWrapper(deps: ChargeDeps, requestOf: RequestOf = contextIsRequest): MeteredResolverWrapper {
  return (field, resolve) => async (source, rawArgs, context, info) => {
    const ctx = await requestOf(context);
    const args = withSubscriptionOf(ctx, rawArgs as Record<string, unknown>);
    const held = ctx.charges.upfront.get(responsePathKey(info)) ?? (await holdAlone(deps, ctx, field, args, info));
    // The resolver gets the host's own context and arguments: runHeld only passes them through.
    return runHeld(held, resolve, source, rawArgs as Record<string, unknown>, context as RequestContext, info);
  };
}

/** Steps 1–6 for one call reached during execution; a refusal is the field's error. */
async function holdAlone(deps: ChargeDeps, ctx: RequestContext, field: Parameters<MeteredResolverWrapper>[0], args: Record<string, unknown>, info: GraphQLResolveInfo): Promise<HeldCall> {
  const outcome = await chargeCalls(deps, ctx, [{ field, path: responsePath(info), args }]);
  if (!outcome.ok) throw outcome.refused[0].error;
  return outcome.held[0];
}

/** A field without a subscriptionId argument charges the subscription the host found in its context. */
export function withSubscriptionOf(ctx: RequestContext, args: Record<string, unknown>): Record<string, unknown> {
  if (args.subscriptionId !== undefined && args.subscriptionId !== null) return args;
  return ctx.subscriptionId === undefined ? args : { ...args, subscriptionId: ctx.subscriptionId };
}
