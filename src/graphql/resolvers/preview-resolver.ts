/** creditPreview: what an operation would cost, field by field, against the subscription's balances. Runs and charges nothing. */
import { Arg, Ctx, Query, Resolver } from "type-graphql";
import { InternalError } from "../../errors/errors.js";
import { priceDocument, totalsByType, type PricedField } from "../../credits/preview/price-document.js";
import { subscriptionSnapshotReader, type SubscriptionSnapshot } from "../../credits/preview/subscription-snapshots.js";
import { isUuid } from "../../util/uuid.js";
import { requireViewer, type RequestContext } from "../context.js";
import { CreditPreview, CreditPreviewInput } from "../types/preview.js";
import { readableSubscription } from "./viewer-resolver.js";

@Resolver()
export class PreviewResolver {
  @Query(() => CreditPreview, { description: "Prices a GraphQL operation without running it or charging anything." })
  async creditPreview(
    @Arg("input", () => CreditPreviewInput, { description: "The subscription, the document and its variables." }) input: CreditPreviewInput,
    @Ctx() ctx: RequestContext,
  ): Promise<CreditPreview> {
    const viewer = requireViewer(ctx);
    const schema = ctx.services.schema;
    if (!schema) throw new InternalError("creditPreview ran before the schema was built");
    const { subscriptionId } = input;

    // The subscription and its balances are read (one statement shared with concurrent previews)
    // while the document is priced. A malformed id never reaches SQL.
    const snapshot: Promise<SubscriptionSnapshot | undefined> = isUuid(subscriptionId)
      ? subscriptionSnapshotReader(ctx.services.db).load(subscriptionId)
      : Promise.resolve(undefined);
    snapshot.catch(() => undefined);

    let items: PricedField[] | undefined;
    let documentError: unknown;
    try {
      items = priceDocument(schema, ctx.services.meteredFields, {
        query: input.query,
        variables: input.variables,
        operationName: input.operationName,
        callerIsAdmin: viewer.isAdmin,
      }, ctx.services.documentChecks);
    } catch (err) {
      documentError = err;
    }

    // Who may see the subscription is answered before anything about the document, by the same
    // check every subscription query uses. The loaders are primed so other fields of this request
    // read nothing again.
    const found = await snapshot;
    if (found) {
      ctx.loaders.subscription.prime(subscriptionId, found.subscription);
      ctx.loaders.balances.prime(subscriptionId, found.balances);
    }
    readableSubscription(ctx, subscriptionId, found?.subscription);
    if (!items) throw documentError;

    const totals = totalsByType(items);
    // A subscription holds a balance of a handful of types at most: a search beats building a map.
    const held = found?.balances ?? [];
    const balanceOf = (type: string) => held.find((b) => b.creditType === type);
    // What a hold could spend: the balance less the credits of grants that have expired but that the
    // expiry pass has not removed yet (docs/grants.md), so the preview answers as the hold would.
    const available = (type: string) => {
      const balance = balanceOf(type);
      return balance ? balance.balance - (found?.expiredUnswept.get(type) ?? 0) : undefined;
    };
    return {
      subscriptionId,
      items,
      totals,
      balances: totals.flatMap(({ type }) => {
        const balance = balanceOf(type);
        return balance ? [{ type, balance: available(type)!, updatedAt: balance.updatedAt, subscriptionId }] : [];
      }),
      // A type the subscription holds no balance of counts as 0 available.
      sufficient: totals.every(({ type, amount }) => amount <= (available(type) ?? 0)),
    };
  }
}
