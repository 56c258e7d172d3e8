/**
 * creditAlerts: recorded anomalies, newest first, in pages with opaque cursors. Admins read every
 * alert; an owner reads the alerts of one of their subscriptions (named by subscriptionId).
 */
import { Arg, Ctx, ID, Int, Query, Resolver } from "type-graphql";
import { ForbiddenError } from "../../errors/errors.js";
import { listAlerts } from "../../observability/alerts/alert-store.js";
import { encodeSeqCursor, parseAfterCursor } from "../../util/cursor.js";
import { requireViewer, type RequestContext } from "../context.js";
import type { CreditAlertKind } from "../types/enums.js";
import { CreditAlertConnection } from "../types/alerts.js";
import { pageSize } from "./ledger-resolver.js";
import { loadReadableSubscription } from "./viewer-resolver.js";

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
    const size = pageSize(first);
    const beforeSeq = parseAfterCursor(after);
    if (subscriptionId !== null && subscriptionId !== undefined) {
      // NOT_FOUND for an unknown (or malformed) id, FORBIDDEN unless the caller owns it or is an admin.
      await loadReadableSubscription(ctx, subscriptionId);
    } else if (!viewer.isAdmin) {
      throw new ForbiddenError("Only admins may read every alert; pass subscriptionId for one of your subscriptions");
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
