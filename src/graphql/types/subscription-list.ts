/** Query.subscriptions: the admin's search over every subscription, newest first, in cursor pages. */
import { Field, ID, InputType, ObjectType } from "type-graphql";
import { SubscriptionStatus } from "./enums.js";
import { PageInfo } from "./ledger.js";
import { BillingSubscription } from "./subscription.js";

@InputType({ description: "Narrows a subscription search; every given condition must match." })
export class SubscriptionFilter {
  @Field(() => ID, { nullable: true, description: "Only this owner's subscriptions (exact subject)." })
  ownerId?: string | null;

  @Field(() => SubscriptionStatus, { nullable: true, description: "Only subscriptions in this status." })
  status?: SubscriptionStatus | null;

  @Field(() => String, { nullable: true, description: "Only subscriptions on this plan." })
  plan?: string | null;

  @Field(() => String, { nullable: true, description: "Matches a subscription id or owner id by prefix." })
  search?: string | null;
}

@ObjectType({ description: "One subscription of a page." })
export class BillingSubscriptionEdge {
  @Field(() => String, { description: "Opaque cursor of this subscription." })
  cursor!: string;

  @Field(() => BillingSubscription, { description: "The subscription." })
  node!: BillingSubscription;
}

@ObjectType({ description: "A page of subscriptions, newest first." })
export class BillingSubscriptionConnection {
  @Field(() => [BillingSubscriptionEdge], { description: "The subscriptions of this page." })
  edges!: BillingSubscriptionEdge[];

  @Field(() => PageInfo, { description: "Paging information." })
  pageInfo!: PageInfo;
}
