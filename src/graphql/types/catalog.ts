import { Field, Int, ObjectType } from "type-graphql";

@ObjectType({ description: "A credit type the server meters." })
export class CreditTypeInfo {
  @Field(() => String, { description: "Name used in `@credits(type:)` and in balances." })
  name!: string;

  @Field(() => String, { description: "What the type pays for." })
  description!: string;
}

@ObjectType({ description: "How one metered field is priced." })
export class MeteredOperation {
  @Field(() => String, { description: "Schema coordinate, e.g. Mutation.runAiTask." })
  operation!: string;

  @Field(() => String, { description: "Credit type the field debits." })
  type!: string;

  @Field(() => Int, { nullable: true, description: "Fixed price, when the field has one." })
  amount?: number | null;

  @Field(() => String, { nullable: true, description: "Estimator name, when the price depends on the arguments." })
  estimator?: string | null;

  @Field(() => String, {
    nullable: true,
    description: "Meter name, when the call settles at its actual cost (the price is then an upper bound).",
  })
  meter?: string | null;

  @Field(() => String, { nullable: true, description: "What the field does and how it is priced." })
  description?: string | null;
}
