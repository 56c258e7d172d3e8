import { GraphQLJSONObject, GraphQLSafeInt } from "graphql-scalars";
import { Field, ID, InputType, Int, ObjectType } from "type-graphql";
import { CreditBalance } from "./subscription.js";

@InputType({ description: "A GraphQL operation to price without running it." })
export class CreditPreviewInput {
  @Field(() => ID, { description: "The subscription that would pay." })
  subscriptionId!: string;

  @Field(() => String, { description: "The GraphQL document to price." })
  query!: string;

  @Field(() => GraphQLJSONObject, { nullable: true, description: "Variables of the document." })
  variables?: Record<string, unknown> | null;

  @Field(() => String, { nullable: true, description: "Operation to price when the document has several." })
  operationName?: string | null;
}

@ObjectType({ description: "The price of one metered field of a previewed operation." })
export class CreditEstimate {
  @Field(() => [String], { description: 'Response path of the field, e.g. ["runAiTask"], or its alias.' })
  path!: string[];

  @Field(() => String, { description: "Schema coordinate, e.g. Mutation.runAiTask." })
  operation!: string;

  @Field(() => String, { description: "Credit type the field debits." })
  type!: string;

  @Field(() => Int, { description: "Credits the field would be charged." })
  amount!: number;

  @Field(() => String, { nullable: true, description: "The estimator the price comes from; null for a fixed price. An admin's creditAmount replaces the amount, not this name." })
  estimator?: string | null;

  @Field(() => Boolean, { description: "True when the estimator failed and the fallback price was used." })
  fallback!: boolean;

  @Field(() => Boolean, { description: "True when the call settles at its metered actual cost: amount is then the most it can cost." })
  settlesAtActual!: boolean;
}

@ObjectType({ description: "A number of credits of one type." })
export class CreditAmount {
  @Field(() => String, { description: "Credit type." })
  type!: string;

  // A total of several admin overrides (each up to 2^31-1) outgrows GraphQL's 32-bit Int.
  @Field(() => GraphQLSafeInt, { description: "Credits." })
  amount!: number;
}

@ObjectType({ description: "What an operation would cost, field by field." })
export class CreditPreview {
  @Field(() => ID, { description: "The subscription that would pay." })
  subscriptionId!: string;

  @Field(() => [CreditEstimate], { description: "One estimate per metered field the operation selects." })
  items!: CreditEstimate[];

  @Field(() => [CreditAmount], { description: "Sum of the items per credit type." })
  totals!: CreditAmount[];

  @Field(() => [CreditBalance], { description: "Current balances of the types the operation uses." })
  balances!: CreditBalance[];

  @Field(() => Boolean, { description: "True when every total is covered by its balance." })
  sufficient!: boolean;
}
