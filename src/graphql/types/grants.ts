import { Field, ID, Int, ObjectType } from "type-graphql";
import { GrantCategory } from "./enums.js";

@ObjectType({ description: "A bucket of credits: what was granted, what is left, and when it expires." })
export class CreditGrant {
  @Field(() => ID, { description: "The grant's id; ledger entries name it in their draws." })
  id!: string;

  @Field(() => ID, { description: "The subscription whose balance the grant belongs to." })
  subscriptionId!: string;

  @Field(() => String, { description: "Credit type of the balance." })
  type!: string;

  @Field(() => GrantCategory, { description: "Where the credits come from." })
  category!: GrantCategory;

  @Field(() => Int, { description: "Credits granted." })
  amount!: number;

  @Field(() => Int, { description: "Credits left." })
  remaining!: number;

  @Field(() => Int, { description: "Lower first: 0 to 100." })
  priority!: number;

  @Field(() => Date, { description: "When the credits became spendable." })
  effectiveAt!: Date;

  @Field(() => Date, { nullable: true, description: "When unused credits expire; null: never." })
  expiresAt?: Date | null;

  @Field(() => String, { nullable: true, description: "Why the grant was made." })
  reason?: string | null;

  @Field(() => Date, { description: "When the grant was made." })
  createdAt!: Date;
}

@ObjectType({ description: "Credits of one grant that one ledger entry took or gave back." })
export class GrantDraw {
  @Field(() => ID, { description: "The grant." })
  grantId!: string;

  @Field(() => Int, { description: "Credits taken from it (debits, expirations) or given to it (grants, refunds, releases); never negative." })
  amount!: number;
}

@ObjectType({ description: "Credits one plan grants per period for one credit type." })
export class PlanAllowance {
  @Field(() => String, { description: "Credit type." })
  type!: string;

  @Field(() => Int, { description: "Credits granted at the start of every period, as a PLAN grant that expires at the period's end." })
  amount!: number;

  @Field(() => Int, { description: "Most unused plan credits carried into the next period (0: none)." })
  rolloverMax!: number;
}

@ObjectType({ description: "A plan from the server's configuration: credits granted every period." })
export class Plan {
  @Field(() => String, { description: "The plan's name, as subscriptions name it." })
  name!: string;

  @Field(() => String, { description: 'Period length, e.g. "1mo" or "30d"; "" for a plan that grants nothing (it has no period).' })
  period!: string;

  @Field(() => [PlanAllowance], { description: "What each period grants, per credit type." })
  allowances!: PlanAllowance[];
}
