/** creditAlerts: admins read recorded anomalies, newest first, in pages with opaque cursors. */
import { Arg, Ctx, ID, Int, Query, Resolver } from "type-graphql";
import { ForbiddenError, NotFoundError } from "../../errors/errors.js";
import { listAlerts } from "../../observability/alerts/alert-store.js";
import { encodeSeqCursor, parseAfterCursor } from "../../util/cursor.js";
import { isUuid } from "../../util/uuid.js";
import { requireViewer, type RequestContext } from "../context.js";
import type { CreditAlertKind } from "../types/enums.js";
import { CreditAlertConnection } from "../types/alerts.js";
import { pageSize } from "./ledger-resolver.js";
import { quoteId } from "../../util/quote-id.js";

@Resolver()
export class AlertsResolver {
  @Query(() => CreditAlertConnection, { description: "Admin only: recorded anomalies, newest first." })
  async creditAlerts(
    @Arg("subscriptionId", () => ID, { nullable: true, description: "Only alerts about this subscription; every alert when left out." })
    subscriptionId: string | null,
    @Arg("first", () => Int, { nullable: true, description: "Alerts per page, 1 to 1,000; 50 when left out." }) first: number | null,
    @Arg("after", () => String, { nullable: true, description: "The endCursor of the previous page." }) after: string | null,
    @Ctx() ctx: RequestContext,
  ): Promise<CreditAlertConnection> {
    const viewer = requireViewer(ctx);
    if (!viewer.isAdmin) throw new ForbiddenError("creditAlerts is for admins only");
    const size = pageSize(first);
    const beforeSeq = parseAfterCursor(after);
    if (subscriptionId !== null && subscriptionId !== undefined) {
      // A malformed id never reaches SQL; an unknown one is NOT_FOUND, as everywhere else.
      const subscription = isUuid(subscriptionId) ? await ctx.loaders.subscription.load(subscriptionId) : undefined;
      if (!subscription) throw new NotFoundError(`Subscription ${quoteId(subscriptionId)} does not exist`);
    }

    // One row more than the page tells whether another page follows.
    const rows = await listAlerts(ctx.services.db, { subscriptionId: subscriptionId ?? undefined, beforeSeq, limit: size + 1 });
    const edges = rows.slice(0, size).map((alert) => ({
      cursor: encodeSeqCursor(alert.seq),
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
