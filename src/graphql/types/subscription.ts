import { Field, ID, Int, ObjectType } from "type-graphql";
import { SubscriptionStatus } from "./enums.js";

@ObjectType({ description: "One balance of a subscription: the credits of one type." })
export class CreditBalance {
  @Field(() => String, { description: "Credit type; one of `Query.creditTypes`." })
  type!: string;

  @Field(() => Int, { description: "Credits available; never negative." })
  balance!: number;

  @Field(() => Date, { description: "When the balance last changed." })
  updatedAt!: Date;

  // `lowBalanceThreshold` and `held` are field resolvers (threshold-resolver.ts, balance-held-resolver.ts).

  /** Whose balance this is (not a GraphQL field): lets field resolvers find the balance's settings and holds. */
  subscriptionId?: string;
}

@ObjectType({ description: "A customer's subscription: the owner of credit balances." })
export class BillingSubscription {
  @Field(() => ID, { description: "The subscription's id; pass it as `subscriptionId` to metered mutations." })
  id!: string;

  @Field(() => ID, { description: "Subject (user id) of the owner." })
  ownerId!: string;

  @Field(() => String, { description: "The plan the subscription is on." })
  plan!: string;

  @Field(() => SubscriptionStatus, { description: "Only ACTIVE subscriptions can spend credits." })
  status!: SubscriptionStatus;

  // `balances` is a field resolver (viewer-resolver.ts), loaded through the request's DataLoader.

  @Field(() => Date, { description: "When the subscription was opened." })
  createdAt!: Date;
}

@ObjectType("Viewer", { description: "The authenticated caller." })
export class ViewerType {
  @Field(() => ID, { description: "Subject of the caller's token." })
  id!: string;

  @Field(() => Boolean, { description: "True for admins (service role or app_metadata.role admin)." })
  isAdmin!: boolean;

  // `subscriptions` is a field resolver (viewer-resolver.ts).
}

