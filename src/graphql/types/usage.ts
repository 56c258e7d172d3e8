import { GraphQLSafeInt } from "graphql-scalars";
import { Field, Float, ObjectType } from "type-graphql";

@ObjectType({ description: "Usage of one group." })
export class UsageBucket {
  @Field(() => String, { description: "The group: an operation, a credit type, a day (YYYY-MM-DD), a user id or a subscription id." })
  key!: string;

  // Sums are SafeInt: a busy subscription's totals outgrow GraphQL's 32-bit Int (a 500 before).
  @Field(() => GraphQLSafeInt, { description: "Debits in the group." })
  calls!: number;

  @Field(() => GraphQLSafeInt, { description: "Credits debited, net of refunds and releases: what the calls cost." })
  credits!: number;

  @Field(() => GraphQLSafeInt, { description: "Credits refunded." })
  refunded!: number;

  @Field(() => GraphQLSafeInt, { description: "Credits held at the price and released after settling at the actual cost." })
  released!: number;

  @Field(() => GraphQLSafeInt, { description: "Credits priced (held) before the calls ran." })
  estimated!: number;

  @Field(() => Float, { description: "credits / calls." })
  averageCredits!: number;
}
