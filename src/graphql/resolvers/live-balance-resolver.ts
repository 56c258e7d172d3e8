/**
 * creditBalanceChanged: a subscription over graphql-ws (src/live/websocket-server.ts). Its source
 * stream is this instance's live-balance hub, opened only after the caller is authorized: NOT_FOUND
 * or FORBIDDEN end the subscription with that error and nothing else is sent.
 */
import type { FieldNode, GraphQLResolveInfo } from "graphql";
import { Arg, Ctx, FieldResolver, ID, Info, Resolver, Root, Subscription } from "type-graphql";
import { requireCreditType } from "../../admin/admin-input.js";
import { BadUserInputError, InternalError } from "../../errors/errors.js";
import type { BalanceEvent } from "../../live/balance-hub.js";
import type { EntryRef } from "../../live/balance-change.js";
import { requireViewer, type RequestContext } from "../context.js";
import { toLedgerEntry } from "../mappers/ledger-entry.js";
import { LedgerKind } from "../types/enums.js";
import { LedgerEntry } from "../types/ledger.js";
import { BalanceThresholdCrossing, CreditBalanceEvent } from "../types/live-balance.js";
import { loadReadableSubscription } from "./viewer-resolver.js";

interface BalanceChangedArgs {
  subscriptionId: string;
  types?: string[] | null;
}

/** Checks the arguments and the caller, then opens the hub's stream for this subscription. */
async function openBalanceStream(args: BalanceChangedArgs, ctx: RequestContext): Promise<AsyncIterable<BalanceEvent>> {
  requireViewer(ctx);
  if (args.types) {
    if (args.types.length === 0) throw new BadUserInputError("types must name at least one credit type, or be left out for all", "types");
    args.types.forEach((type, i) => requireCreditType(type, `types[${i}]`));
  }
  const subscription = await loadReadableSubscription(ctx, args.subscriptionId);
  const live = ctx.services.live;
  if (!live) throw new InternalError("live balance is not running");
  return live.subscribe(subscription.id, args.types ?? undefined);
}

/** Fields of LedgerEntry the notification itself carries: asking only for these costs no query. */
const NOTIFIED_FIELDS = new Set(["id", "subscriptionId", "type", "kind", "amount", "balanceAfter", "createdAt", "__typename"]);

/**
 * Whether each field node of this place in the document asks only for fields the notification
 * carries. A subscription's document is parsed once and its AST nodes are the same objects for every
 * event (the lists graphql-js gathers them in are not), so the answer is kept per node rather than
 * worked out again for each event.
 */
const notifiedOnly = new WeakMap<FieldNode, boolean>();

function selectsOnlyNotifiedFields(node: FieldNode): boolean {
  let known = notifiedOnly.get(node);
  if (known === undefined) {
    known = (node.selectionSet?.selections ?? []).every((s) => s.kind === "Field" && NOTIFIED_FIELDS.has((s as FieldNode).name.value));
    notifiedOnly.set(node, known);
  }
  return known;
}

function asksOnlyNotifiedFields(info: GraphQLResolveInfo): boolean {
  return info.fieldNodes.every(selectsOnlyNotifiedFields);
}

@Resolver(() => CreditBalanceEvent)
export class LiveBalanceResolver {
  @Subscription(() => CreditBalanceEvent, {
    description:
      "Pushes changes of a subscription's balances as they are committed, on any server\n" +
      "instance: holds, releases, refunds, grants, adjustments and expirations. Changes of\n" +
      "one balance that come faster than the push interval are coalesced into one event\n" +
      "carrying the latest balance. Owner or admin. Transport: graphql-ws on /graphql.",
    subscribe: ({ args, context }) => openBalanceStream(args as BalanceChangedArgs, context as RequestContext),
  })
  creditBalanceChanged(
    @Root() event: BalanceEvent,
    @Arg("subscriptionId", () => ID, { description: "The subscription to follow." }) _subscriptionId: string,
    @Arg("types", () => [String], { nullable: true, description: "Only these credit types; all when left out." })
    _types: string[] | null,
  ): CreditBalanceEvent {
    return {
      subscriptionId: event.subscriptionId,
      type: event.type,
      balance: event.balance,
      entries: event.entries,
      lastEntry: event.lastEntry,
      threshold: event.threshold as BalanceThresholdCrossing | null,
    };
  }

  // Synchronous in the usual case (only notified fields asked for): every event of every subscriber
  // runs this, and a promise per event is work for nothing.
  @FieldResolver(() => LedgerEntry, { description: "The newest of those entries." })
  lastEntry(
    @Root() event: CreditBalanceEvent,
    @Info() info: GraphQLResolveInfo,
    @Ctx() ctx: RequestContext,
  ): Partial<LedgerEntry> | Promise<Partial<LedgerEntry>> {
    const ref = event.lastEntry;
    if (asksOnlyNotifiedFields(info)) return fromRef(ref);
    return fullEntry(ctx, ref);
  }
}

/** The whole ledger entry, read from the database, for a selection that asks for more than the notification carries. */
async function fullEntry(ctx: RequestContext, ref: EntryRef): Promise<Partial<LedgerEntry>> {
  const record = await ctx.services.live?.entry(ref);
  // An entry is never deleted (the ledger is append-only); still, answer what is known.
  return record ? toLedgerEntry(record) : fromRef(ref);
}

function fromRef(ref: EntryRef): Partial<LedgerEntry> {
  return {
    id: ref.id,
    subscriptionId: ref.subscriptionId,
    type: ref.creditType,
    kind: ref.kind as LedgerKind,
    amount: ref.amount,
    balanceAfter: ref.balanceAfter,
    createdAt: ref.createdAt,
  };
}
