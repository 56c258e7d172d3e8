import { GraphQLJSONObject } from "graphql-scalars";
import { Field, ID, ObjectType } from "type-graphql";
import { CreditAlertKind } from "./enums.js";
import { PageInfo } from "./ledger.js";

@ObjectType({ description: "A recorded anomaly." })
export class CreditAlert {
  @Field(() => ID, { description: "The alert's id." })
  id!: string;

  @Field(() => ID, { nullable: true, description: "The subscription concerned, when there is one." })
  subscriptionId?: string | null;

  @Field(() => CreditAlertKind, { description: "What the alert is about." })
  kind!: CreditAlertKind;

  @Field(() => String, { description: "What happened, in words." })
  message!: string;

  @Field(() => GraphQLJSONObject, { nullable: true, description: "Figures behind the alert." })
  details?: Record<string, unknown> | null;

  @Field(() => Date, { description: "When the alert was raised." })
  createdAt!: Date;
}

@ObjectType({ description: "One alert of a page." })
export class CreditAlertEdge {
  @Field(() => String, { description: "Opaque cursor of this alert." })
  cursor!: string;

  @Field(() => CreditAlert, { description: "The alert." })
  node!: CreditAlert;
}

@ObjectType({ description: "A page of alerts, newest first." })
export class CreditAlertConnection {
  @Field(() => [CreditAlertEdge], { description: "The alerts of this page." })
  edges!: CreditAlertEdge[];

  @Field(() => PageInfo, { description: "Paging information." })
  pageInfo!: PageInfo;
}
