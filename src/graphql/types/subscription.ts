import { Field, ID, Int, ObjectType } from "type-graphql";
import { SubscriptionStatus } from "./enums.js";
import type { CreditGrant } from "./grants.js";

/**
 * What a balance's field resolvers answered when an idempotent mutation returned it, read in the
 * mutation's transaction and stored with its result (src/admin/frozen-answer.ts): a replay answers
 * these, not the current data.
 */
export interface FrozenBalanceFields {
  lowBalanceThreshold: number | null;
  held: number;
}

/** The same for a subscription's field resolvers (each balance carries its own FrozenBalanceFields). */
export interface FrozenSubscriptionFields {
  balances: CreditBalance[];
  /** Every grant, spent and expired ones included, in spending order (`grants(includeSpent: true)`). */
  grants: CreditGrant[];
  /** The grants that could still be spent then (`grants`). */
  spendableGrants: CreditGrant[];
  currentPeriodEnd: Date | null;
}

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

  /** Set on an idempotent mutation's answer (not a GraphQL field): the field resolvers answer from it. */
  frozen?: FrozenBalanceFields;
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

  @Field(() => String, { nullable: true, description: "Why the status last changed." })
  statusReason?: string | null;

  @Field(() => Date, { description: "When the subscription was opened." })
  createdAt!: Date;

  /** Set on an idempotent mutation's answer (not a GraphQL field): the field resolvers answer from it. */
  frozen?: FrozenSubscriptionFields;
}

@ObjectType("Viewer", { description: "The authenticated caller." })
export class ViewerType {
  @Field(() => ID, { description: "Subject of the caller's token." })
  id!: string;

  @Field(() => Boolean, { description: "True for admins (service role or app_metadata.role admin)." })
  isAdmin!: boolean;

  // `subscriptions` is a field resolver (viewer-resolver.ts).
}

