/** Query.subscriptions: admins find subscriptions (by owner, status, plan, or an id prefix), newest first. */
import { Arg, Ctx, Int, Query, Resolver } from "type-graphql";
import { requireAdmin } from "../../admin/require-admin.js";
import { MAX_NAME_LENGTH } from "../../admin/admin-input.js";
import { BadUserInputError } from "../../errors/errors.js";
import { searchSubscriptions, type SubscriptionSearch } from "../../subscriptions/subscription-search.js";
import { MAX_USER_ID_LENGTH } from "../../util/text.js";
import { isUuid } from "../../util/uuid.js";
import type { RequestContext } from "../context.js";
import { BillingSubscriptionConnection, SubscriptionFilter } from "../types/subscription-list.js";
import { pageSize } from "./ledger-resolver.js";
import { toBillingSubscription } from "./viewer-resolver.js";
import { retryOnLostConnection } from "../../db/lost-connection-retry.js";

/** A subscription's cursor: its id, base64url-encoded so clients treat it as opaque. */
export function encodeSubscriptionCursor(id: string): string {
  return Buffer.from(id, "utf8").toString("base64url");
}

function parseSubscriptionCursor(after: string | null | undefined): string | undefined {
  if (after === null || after === undefined) return undefined;
  const id = /^[A-Za-z0-9_-]{1,64}$/.test(after) ? Buffer.from(after, "base64url").toString("utf8") : "";
  if (!isUuid(id) || encodeSubscriptionCursor(id) !== after) {
    throw new BadUserInputError("after is not a cursor of this listing: pass the endCursor or an edge's cursor from a previous page", "after");
  }
  return id.toLowerCase();
}

/**
 * A filter's text: trimmed; blank means "no condition"; longer than `max` is BAD_USER_INPUT. A search
 * stays forgiving of a pasted space: no user id starts or ends with white space (src/util/text.ts),
 * so trimming an owner filter can only find the id that was meant.
 */
function filterText(value: string | null | undefined, field: string, max: number): string | undefined {
  const trimmed = value?.trim();
  if (!trimmed) return undefined;
  if (trimmed.length > max) throw new BadUserInputError(`${field} is too long: at most ${max} characters`, field);
  return trimmed;
}

function searchOf(filter: SubscriptionFilter | null): Omit<SubscriptionSearch, "first" | "afterId"> {
  if (!filter) return {};
  return {
    // Owner ids are user ids: any id a subscription can have (up to MAX_USER_ID_LENGTH) can be looked for.
    ownerId: filterText(filter.ownerId, "filter.ownerId", MAX_USER_ID_LENGTH),
    status: filter.status ?? undefined,
    plan: filterText(filter.plan, "filter.plan", MAX_NAME_LENGTH),
    prefix: filterText(filter.search, "filter.search", MAX_USER_ID_LENGTH),
  };
}

@Resolver()
export class SubscriptionsResolver {
  @Query(() => BillingSubscriptionConnection, { description: "Admin only: finds subscriptions, newest first." })
  async subscriptions(
    @Arg("filter", () => SubscriptionFilter, { nullable: true, description: "Only subscriptions that match every given condition." })
    filter: SubscriptionFilter | null,
    @Arg("first", () => Int, { nullable: true, description: "Subscriptions per page, 1 to 1,000; 50 when left out." }) first: number | null,
    @Arg("after", () => String, { nullable: true, description: "The endCursor of the previous page." }) after: string | null,
    @Ctx() ctx: RequestContext,
  ): Promise<BillingSubscriptionConnection> {
    requireAdmin(ctx, "list every subscription; use viewer.subscriptions for your own");
    const size = pageSize(first);
    const afterId = parseSubscriptionCursor(after);
    const page = await retryOnLostConnection(() => searchSubscriptions(ctx.services.db, { ...searchOf(filter), first: size, afterId }));
    for (const row of page.subscriptions) ctx.loaders.subscription.prime(row.id, row);
    const edges = page.subscriptions.map((row) => ({ cursor: encodeSubscriptionCursor(row.id), node: toBillingSubscription(row) }));
    return {
      edges,
      pageInfo: { hasNextPage: page.hasNextPage, endCursor: edges.length > 0 ? edges[edges.length - 1].cursor : null },
    };
  }
}
