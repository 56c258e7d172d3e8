/**
 * creditAlerts: recorded anomalies and balance notifications, newest first, in pages with opaque
 * cursors. Admins read every alert; an owner reads those of one of their subscriptions, named.
 */
import { Arg, Ctx, ID, Int, Query, Resolver } from "type-graphql";
import { ForbiddenError, NotFoundError } from "../../errors/errors.js";
import { listAlerts, listAlertsAfter } from "../../observability/alerts/alert-store.js";
import { encodeRowCursor, notACursorOfListing, parseAfterCursor } from "../../util/cursor.js";
import { isUuid } from "../../util/uuid.js";
import { requireViewer, type RequestContext } from "../context.js";
import type { CreditAlertKind } from "../types/enums.js";
import { CreditAlertConnection } from "../types/alerts.js";
import { pageSize } from "./ledger-resolver.js";
import { quoteId } from "../../util/quote-id.js";
import { retryOnLostConnection } from "../../db/lost-connection-retry.js";

@Resolver()
export class AlertsResolver {
  @Query(() => CreditAlertConnection, {
    description: "Recorded anomalies and balance notifications, newest first. Admins see all; an owner must name one of their subscriptions.",
  })
  async creditAlerts(
    @Arg("subscriptionId", () => ID, { nullable: true, description: "Only alerts about this subscription; every alert when left out." })
    subscriptionId: string | null,
    @Arg("first", () => Int, { nullable: true, description: "Alerts per page, 1 to 1,000; 50 when left out." }) first: number | null,
    @Arg("after", () => String, { nullable: true, description: "The endCursor of the previous page." }) after: string | null,
    @Ctx() ctx: RequestContext,
  ): Promise<CreditAlertConnection> {
    const viewer = requireViewer(ctx);
    const named = subscriptionId !== null && subscriptionId !== undefined;
    if (!viewer.isAdmin && !named) throw new ForbiddenError("Only admins may read every alert: name one of your subscriptions");
    const size = pageSize(first);
    const afterId = parseAfterCursor("alerts", after);
    if (named) {
      // A malformed id never reaches SQL; an unknown one is NOT_FOUND, as everywhere else.
      const subscription = isUuid(subscriptionId) ? await ctx.loaders.subscription.load(subscriptionId) : undefined;
      if (!subscription) throw new NotFoundError(`Subscription ${quoteId(subscriptionId)} does not exist`);
      if (!viewer.isAdmin && subscription.ownerId !== viewer.id) throw new ForbiddenError("You may only read the alerts of your own subscriptions");
    }

    // One row more than the page tells whether another page follows.
    const request = { subscriptionId: subscriptionId ?? undefined, limit: size + 1 };
    const rows = await retryOnLostConnection(() =>
      afterId === undefined ? listAlerts(ctx.services.db, request) : listAlertsAfter(ctx.services.db, { ...request, afterId }),
    );
    // The cursor names an alert outside this listing (another subscription's, or none): as malformed.
    if (!rows) throw notACursorOfListing();
    const edges = rows.slice(0, size).map((alert) => ({
      cursor: encodeRowCursor("alerts", alert.id),
      node: {
        id: alert.id,
        subscriptionId: alert.subscriptionId,
        kind: alert.kind as CreditAlertKind,
        message: alert.message,
        details: alert.details,
        createdAt: alert.createdAt,
      },
    }));
    return {
      edges,
      pageInfo: { hasNextPage: rows.length > size, endCursor: edges.length > 0 ? edges[edges.length - 1].cursor : null },
    };
  }
}
