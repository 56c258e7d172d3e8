/** Query.subscriptions: admins find subscriptions (by owner, status, plan, or an id prefix), newest first. */
import { Arg, Ctx, Int, Query, Resolver } from "type-graphql";
import { requireAdmin } from "../../admin/require-admin.js";
import { MAX_NAME_LENGTH } from "../../admin/admin-input.js";
import { BadUserInputError } from "../../errors/errors.js";
import { searchSubscriptions, type SubscriptionSearch } from "../../subscriptions/subscription-search.js";
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

/** A filter's text: trimmed; blank means "no condition"; too long is BAD_USER_INPUT. */
function filterText(value: string | null | undefined, field: string): string | undefined {
  const trimmed = value?.trim();
  if (!trimmed) return undefined;
  if (trimmed.length > MAX_NAME_LENGTH) throw new BadUserInputError(`${field} is too long: at most ${MAX_NAME_LENGTH} characters`, field);
  return trimmed;
}

function searchOf(filter: SubscriptionFilter | null): Omit<SubscriptionSearch, "first" | "afterId"> {
  if (!filter) return {};
  return {
    ownerId: filterText(filter.ownerId, "filter.ownerId"),
    status: filter.status ?? undefined,
    plan: filterText(filter.plan, "filter.plan"),
    prefix: filterText(filter.search, "filter.search"),
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
