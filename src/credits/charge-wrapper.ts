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
import { GraphQLError, type GraphQLResolveInfo } from "graphql";
import {
  contextIsRequest,
  responsePath,
  responsePathKey,
  servedByPlugin,
  type CreditsRequest as RequestContext,
  type RequestOf,
} from "./credits-request.js";
import { MASKED_MESSAGE } from "../graphql/format-error.js";
import { chargeCalls, runHeld, type ChargeDeps, type HeldCall } from "./charge-phases.js";
import type { MeteredResolverWrapper } from "./credits-directive.js";

export type ChargeWrapperDeps = ChargeDeps;

export interface ChargeWrapperOptions {
  /**
   * Refuse, before holding anything, a call in a request credits.plugin did not serve (markServedByPlugin):
   * without the plugin nothing would settle its hold. createCredits sets it; tests that drive the
   * wrapper and settle by hand leave it off.
   */
  requirePlugin?: boolean;
}

/** Logged once, at error, when a metered field runs on an Apollo Server without the plugin. */
export const PLUGIN_MISSING = "credits.plugin is not installed on this Apollo Server: add plugins: [credits.plugin]";

/** `requestOf` finds the credits state of the host's context (convention 10). */
export function createChargeWrapper(deps: ChargeDeps, requestOf: RequestOf = contextIsRequest, options: ChargeWrapperOptions = {}): MeteredResolverWrapper {
  let toldPluginMissing = false;
  const withoutPlugin = (ctx: RequestContext, info: GraphQLResolveInfo): never => {
    if (!toldPluginMissing) ctx.logger.error({ event: "credits.plugin_missing" }, PLUGIN_MISSING);
    toldPluginMissing = true;
    throw maskedFieldError(ctx, info);
  };
  return (field, resolve) => async (source, rawArgs, context, info) => {
    markUncacheable(info);
    const ctx = await requestOf(context);
    const args = withSubscriptionOf(ctx, rawArgs as Record<string, unknown>);
    // A field held with its operation was held by the plugin; one held alone needs the plugin to settle it.
    const held =
      ctx.charges.upfront.get(responsePathKey(info)) ??
      (options.requirePlugin && !servedByPlugin(ctx) ? withoutPlugin(ctx, info) : await holdAlone(deps, ctx, field, args, info));
    // The resolver gets the host's own context and arguments: runHeld only passes them through.
    return runHeld(held, resolve, source, rawArgs as Record<string, unknown>, context as RequestContext, info);
  };
}

/** What Apollo's cache-control plugin puts on a field's info while it runs (absent without the plugin). */
interface CacheControlInfo {
  cacheControl?: { setCacheHint(hint: { maxAge?: number }): void };
}

/**
 * A paid answer is the caller's alone: never cached. A host's cache hints (a PUBLIC scope, a
 * defaultMaxAge) answered a paid call with `cache-control: max-age=60, public`, so a shared cache could
 * hand it to someone else, and Apollo's response cache stored it and answered the next caller without
 * running or charging anything (an outside audit of library hosts). A metered field's maxAge 0 makes
 * the whole response uncacheable (no-store), whatever the other fields say.
 */
function markUncacheable(info: GraphQLResolveInfo): void {
  (info as GraphQLResolveInfo & CacheControlInfo).cacheControl?.setCacheHint({ maxAge: 0 });
}

/** Steps 1–6 for one call reached during execution; a refusal is the field's error. */
async function holdAlone(deps: ChargeDeps, ctx: RequestContext, field: Parameters<MeteredResolverWrapper>[0], args: Record<string, unknown>, info: GraphQLResolveInfo): Promise<HeldCall> {
  const outcome = await chargeCalls(deps, ctx, [{ field, path: responsePath(info), args }]);
  if (!outcome.ok) throw outcome.refused[0].error;
  return outcome.held[0];
}

/**
 * INTERNAL_SERVER_ERROR as the plugin would have masked it, for a server that lacks the plugin (and so
 * its formatting): the masked message, the requestId, status 500, and no stack for Apollo to add
 * outside production. It carries its path, so graphql-js reports it as it is rather than wrapping it.
 */
function maskedFieldError(ctx: RequestContext, info: GraphQLResolveInfo): GraphQLError {
  const path: (string | number)[] = [];
  for (let p: GraphQLResolveInfo["path"] | undefined = info.path; p; p = p.prev) path.unshift(p.key);
  const error = new GraphQLError(MASKED_MESSAGE, {
    nodes: info.fieldNodes,
    path,
    extensions: { code: "INTERNAL_SERVER_ERROR", requestId: ctx.requestId, http: { status: 500 } },
  });
  Object.defineProperty(error, "stack", { value: undefined, writable: true, configurable: true });
  return error;
}

/** A field without a subscriptionId argument charges the subscription the host found in its context. */
export function withSubscriptionOf(ctx: RequestContext, args: Record<string, unknown>): Record<string, unknown> {
  if (args.subscriptionId !== undefined && args.subscriptionId !== null) return args;
  return ctx.subscriptionId === undefined ? args : { ...args, subscriptionId: ctx.subscriptionId };
}
