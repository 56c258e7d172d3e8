/**
 * creditUsage (one subscription, owner or admin) and creditStats (all subscriptions, admin only):
 * debits grouped, net of refunds. Both are reports (src/db/report-gate.ts): they run through the
 * instance's report gate, bounded by REPORT_QUERY_TIMEOUT.
 */
import { Arg, Ctx, ID, Query, Resolver } from "type-graphql";
import { runReport } from "../../db/report-gate.js";
import { statementTimedOut } from "../../db/statement-timeout.js";
import { BadUserInputError, ForbiddenError } from "../../errors/errors.js";
import { usageFigures, type UsageRequest } from "../../ledger/usage.js";
import { checkTimeWindow } from "../../util/time-window.js";
import { checkTimeZone } from "../../util/time-zone.js";
import { requireViewer, type RequestContext } from "../context.js";
import { UsageGroupBy } from "../types/enums.js";
import { UsageBucket } from "../types/usage.js";
import { loadReadableSubscription } from "./viewer-resolver.js";

const GROUP_BY = { description: "How to group the debits." };
const THEN_BY = { nullable: true, description: "A second grouping inside each group; its key is the bucket's subKey." };
const TIME_ZONE = { nullable: true, defaultValue: "UTC", description: "IANA time zone whose calendar days DAY counts, e.g. \"Europe/Berlin\"." };
const FROM = { nullable: true, description: "Only debits at or after this time." };
const TO = { nullable: true, description: "Only debits before this time." };

/** The arguments shared by both queries, checked: BAD_USER_INPUT for a reversed window, an unknown zone, or thenBy = groupBy. */
function usageRequest(
  groupBy: UsageGroupBy,
  thenBy: UsageGroupBy | null,
  timeZone: string | null,
  from: Date | null,
  to: Date | null,
): UsageRequest {
  if (thenBy === groupBy) throw new BadUserInputError(`thenBy must differ from groupBy (both are ${groupBy})`, "thenBy");
  return { grouping: groupBy, thenBy: thenBy ?? undefined, timeZone: checkTimeZone(timeZone), ...checkTimeWindow(from, to) };
}

/** "30 s", "1.5 s", "500 ms": a bound as a client reads it. */
function spoken(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${Number((ms / 1000).toFixed(1))} s`;
}

/**
 * The usage figures, as a report. A report the database cancelled at REPORT_QUERY_TIMEOUT answers
 * BAD_USER_INPUT: of the closed codes (DESIGN.md, "Errors") it is the one whose message reaches the
 * client and says what to do: the window is the caller's, and a narrower one reads fewer entries.
 * INTERNAL_SERVER_ERROR would be masked and counted as our failure; RATE_LIMITED would invite the
 * same query again. A busy database can be the cause too, and the message says so.
 */
async function usageReport(ctx: RequestContext, field: string, request: UsageRequest): Promise<UsageBucket[]> {
  const timeoutMs = ctx.services.config.REPORT_QUERY_TIMEOUT;
  try {
    return await runReport(ctx.services, timeoutMs, (tx) => usageFigures(tx, request));
  } catch (err) {
    if (!statementTimedOut(err)) throw err;
    throw new BadUserInputError(
      `${field} did not finish within ${spoken(timeoutMs)}: narrow the window (from, to), or try again when the server is less busy`,
      "from",
    );
  }
}

@Resolver()
export class UsageResolver {
  @Query(() => [UsageBucket], {
    description: "A subscription's usage, grouped by one dimension, or two with thenBy. Days are counted in timeZone (IANA name).",
  })
  async creditUsage(
    @Arg("subscriptionId", () => ID, { description: "The subscription; the caller must own it or be an admin." }) subscriptionId: string,
    @Arg("groupBy", () => UsageGroupBy, GROUP_BY) groupBy: UsageGroupBy,
    @Arg("thenBy", () => UsageGroupBy, THEN_BY) thenBy: UsageGroupBy | null,
    @Arg("timeZone", () => String, TIME_ZONE) timeZone: string | null,
    @Arg("from", () => Date, FROM) from: Date | null,
    @Arg("to", () => Date, TO) to: Date | null,
    @Ctx() ctx: RequestContext,
  ): Promise<UsageBucket[]> {
    requireViewer(ctx);
    const request = usageRequest(groupBy, thenBy, timeZone, from, to);
    await loadReadableSubscription(ctx, subscriptionId);
    return usageReport(ctx, "creditUsage", { ...request, subscriptionId });
  }

  @Query(() => [UsageBucket], { description: "Admin only: usage across all subscriptions, grouped." })
  async creditStats(
    @Arg("groupBy", () => UsageGroupBy, GROUP_BY) groupBy: UsageGroupBy,
    @Arg("thenBy", () => UsageGroupBy, THEN_BY) thenBy: UsageGroupBy | null,
    @Arg("timeZone", () => String, TIME_ZONE) timeZone: string | null,
    @Arg("from", () => Date, FROM) from: Date | null,
    @Arg("to", () => Date, TO) to: Date | null,
    @Ctx() ctx: RequestContext,
  ): Promise<UsageBucket[]> {
    const viewer = requireViewer(ctx);
    if (!viewer.isAdmin) throw new ForbiddenError("creditStats is for admins only; use creditUsage for your own subscription");
    const request = usageRequest(groupBy, thenBy, timeZone, from, to);
    return usageReport(ctx, "creditStats", request);
  }
}
