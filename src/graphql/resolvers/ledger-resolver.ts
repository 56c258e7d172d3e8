/**
 * creditLedger: a subscription's ledger, newest first, in pages with opaque cursors. Owner or admin;
 * without a subscription, every subscription's ledger, for admins only.
 */
import { Arg, Ctx, ID, Int, Query, Resolver } from "type-graphql";
import { isCreditType, CREDIT_TYPES } from "../../credits/credit-types.js";
import { BadUserInputError, ForbiddenError } from "../../errors/errors.js";
import { ledgerPage, type LedgerPageFilter } from "../../ledger/ledger-page.js";
import { encodeRowCursor, notACursorOfListing, parseAfterCursor } from "../../util/cursor.js";
import { checkTimeWindow } from "../../util/time-window.js";
import { requireViewer, type RequestContext } from "../context.js";
import { toLedgerEntry } from "../mappers/ledger-entry.js";
import { LedgerConnection, LedgerFilter } from "../types/ledger.js";
import { loadReadableSubscription } from "./viewer-resolver.js";
import { retryOnLostConnection } from "../../db/lost-connection-retry.js";

export const LEDGER_PAGE_DEFAULT = 50;
export const LEDGER_PAGE_MAX = 1_000;

/** The page size asked for, or BAD_USER_INPUT naming the bounds. */
export function pageSize(first: number | null | undefined, fallback = LEDGER_PAGE_DEFAULT, max = LEDGER_PAGE_MAX): number {
  if (first === null || first === undefined) return fallback;
  if (!Number.isInteger(first) || first < 1 || first > max) {
    throw new BadUserInputError(`first must be between 1 and ${max.toLocaleString("en-US")}, got ${first}`, "first");
  }
  return first;
}

/** The GraphQL filter as the ledger module takes it; BAD_USER_INPUT for an unknown type, an empty kinds list or a reversed window. */
function ledgerFilter(filter: LedgerFilter | null | undefined): LedgerPageFilter {
  if (!filter) return {};
  const result: LedgerPageFilter = { ...checkTimeWindow(filter.from, filter.to, { from: "filter.from", to: "filter.to" }) };
  if (filter.type !== null && filter.type !== undefined) {
    if (!isCreditType(filter.type)) {
      throw new BadUserInputError(
        `filter.type "${filter.type}" is not a credit type (${CREDIT_TYPES.map((t) => t.name).join(", ")})`,
        "filter.type",
      );
    }
    result.creditType = filter.type;
  }
  if (filter.kinds !== null && filter.kinds !== undefined) {
    if (filter.kinds.length === 0) {
      throw new BadUserInputError("filter.kinds must name at least one kind; leave it out for every kind", "filter.kinds");
    }
    result.kinds = [...new Set(filter.kinds)];
  }
  if (filter.operation !== null && filter.operation !== undefined) result.operation = filter.operation;
  return result;
}

@Resolver()
export class LedgerResolver {
  @Query(() => LedgerConnection, {
    description: "A subscription's ledger, newest first. Without subscriptionId: every subscription's ledger, admin only.",
  })
  async creditLedger(
    @Arg("subscriptionId", () => ID, {
      nullable: true,
      description: "The subscription; the caller must own it or be an admin. Left out: every subscription (admins only).",
    })
    subscriptionId: string | null,
    @Arg("filter", () => LedgerFilter, { nullable: true, description: "Only entries that match every given condition." })
    filter: LedgerFilter | null,
    @Arg("first", () => Int, { nullable: true, description: "Entries per page, 1 to 1,000; 50 when left out." }) first: number | null,
    @Arg("after", () => String, { nullable: true, description: "The endCursor of the previous page." }) after: string | null,
    @Ctx() ctx: RequestContext,
  ): Promise<LedgerConnection> {
    const viewer = requireViewer(ctx);
    const size = pageSize(first);
    const afterId = parseAfterCursor("ledger", after);
    const pageFilter = ledgerFilter(filter);
    if (subscriptionId === null || subscriptionId === undefined) {
      // Leaving the subscription out asks for everyone's ledger: a question of authority, not of input.
      if (!viewer.isAdmin) throw new ForbiddenError("Only admins may read every subscription's ledger; pass subscriptionId for one of yours");
    } else {
      await loadReadableSubscription(ctx, subscriptionId);
    }

    const page = await retryOnLostConnection(() => ledgerPage(ctx.services.db, { subscriptionId: subscriptionId ?? undefined, filter: pageFilter, first: size, afterId }));
    // The cursor names an entry outside this listing (another subscription's, or none): as malformed.
    if (!page) throw notACursorOfListing();
    const edges = page.entries.map((entry) => ({ cursor: encodeRowCursor("ledger", entry.id), node: toLedgerEntry(entry) }));
    return {
      edges,
      pageInfo: { hasNextPage: page.hasNextPage, endCursor: edges.length > 0 ? edges[edges.length - 1].cursor : null },
    };
  }
}
