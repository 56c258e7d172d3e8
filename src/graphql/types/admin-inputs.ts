import { Field, ID, InputType, Int } from "type-graphql";
import { GrantCategory } from "./enums.js";

@InputType({ description: "A number of credits of one type." })
export class CreditAmountInput {
  @Field(() => String, { description: "Credit type." })
  type!: string;

  @Field(() => Int, { description: "Credits." })
  amount!: number;
}

@InputType({ description: "A new subscription." })
export class CreateSubscriptionInput {
  @Field(() => ID, { description: "Subject (user id) of the owner." })
  ownerId!: string;

  @Field(() => String, { description: "The plan's name. With PLANS configured, a name it does not list is accepted and grants nothing: no allowance, no period, no renewal." })
  plan!: string;

  @Field(() => [CreditAmountInput], { nullable: true, description: "Starting credits: each amount above 0 is written as a GRANT entry (and a grant); an amount of 0 writes nothing." })
  initialCredits?: CreditAmountInput[] | null;
}

@InputType({ description: "Credits to add to a balance." })
export class GrantCreditsInput {
  @Field(() => ID, { description: "The subscription." })
  subscriptionId!: string;

  @Field(() => String, { description: "Credit type." })
  type!: string;

  @Field(() => Int, { description: "Positive number of credits to add." })
  amount!: number;

  @Field(() => String, { description: "Why; recorded in the ledger." })
  reason!: string;

  @Field(() => GrantCategory, { nullable: true, defaultValue: GrantCategory.PAID, description: "Where the credits come from." })
  category?: GrantCategory | null;

  @Field(() => Int, { nullable: true, defaultValue: 50, description: "0 to 100; lower is spent first." })
  priority?: number | null;

  @Field(() => Date, { nullable: true, description: "Unused credits of this grant expire then; null: never." })
  expiresAt?: Date | null;
}

@InputType({ description: "A correction of a balance." })
export class AdjustCreditsInput {
  @Field(() => ID, { description: "The subscription." })
  subscriptionId!: string;

  @Field(() => String, { description: "Credit type." })
  type!: string;

  @Field(() => Int, { description: "Signed change; the balance may not go below zero." })
  delta!: number;

  @Field(() => String, { description: "Why; recorded in the ledger." })
  reason!: string;
}

@InputType({ description: "A refund of a debit." })
export class RefundChargeInput {
  @Field(() => ID, { description: "The DEBIT entry to refund." })
  entryId!: string;

  @Field(() => Int, { nullable: true, description: "Credits to return; defaults to all the debit has left: what it held, less what was released and refunded since." })
  amount?: number | null;

  @Field(() => String, { description: "Why; recorded in the ledger." })
  reason!: string;
}
