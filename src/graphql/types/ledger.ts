import { Field, ID, InputType, Int, ObjectType } from "type-graphql";
import { LedgerKind } from "./enums.js";

@ObjectType({ description: "One immutable change to a balance." })
export class LedgerEntry {
  @Field(() => ID, { description: "The entry's id." })
  id!: string;

  @Field(() => ID, { description: "The subscription whose balance changed." })
  subscriptionId!: string;

  @Field(() => String, { description: "Credit type of the balance." })
  type!: string;

  @Field(() => LedgerKind, { description: "What kind of change this is." })
  kind!: LedgerKind;

  @Field(() => Int, { description: "Signed change of the balance: negative for a debit." })
  amount!: number;

  @Field(() => Int, { description: "The balance right after this entry." })
  balanceAfter!: number;

  @Field(() => String, {
    nullable: true,
    description:
      "Schema coordinate of the metered field, for debits and the releases and refunds of them, and for the EXPIRATION of credits such a release or refund gave back to a grant that had expired.",
  })
  operation?: string | null;

  @Field(() => Int, { nullable: true, description: "The estimate at charge time, for debits." })
  estimated?: number | null;

  @Field(() => ID, { nullable: true, description: "Subject of whoever caused the entry." })
  actorId?: string | null;

  @Field(() => Boolean, { description: "True when an admin set the amount of a debit." })
  adminOverride!: boolean;

  @Field(() => String, { nullable: true, description: "Why the entry was made, for grants, adjustments and refunds." })
  reason?: string | null;

  @Field(() => ID, { nullable: true, description: "The debit this entry refunds or releases." })
  refundOf?: string | null;

  @Field(() => String, { nullable: true, description: "Request id of the request that made the entry." })
  requestId?: string | null;

  @Field(() => Date, { description: "When the entry was written." })
  createdAt!: Date;
}

@InputType({ description: "Narrows a ledger listing." })
export class LedgerFilter {
  @Field(() => String, { nullable: true, description: "Only this credit type." })
  type?: string | null;

  @Field(() => [LedgerKind], { nullable: true, description: "Only these kinds." })
  kinds?: LedgerKind[] | null;

  @Field(() => String, { nullable: true, description: "Only this operation (schema coordinate)." })
  operation?: string | null;

  @Field(() => Date, { nullable: true, description: "Entries at or after this time." })
  from?: Date | null;

  @Field(() => Date, { nullable: true, description: "Entries before this time." })
  to?: Date | null;
}

@ObjectType({ description: "Where a page ends and whether more follow." })
export class PageInfo {
  @Field(() => Boolean, { description: "True when another page follows." })
  hasNextPage!: boolean;

  @Field(() => String, { nullable: true, description: "Cursor of the page's last edge; pass it as `after`." })
  endCursor?: string | null;
}

@ObjectType({ description: "One ledger entry of a page." })
export class LedgerEdge {
  @Field(() => String, { description: "Opaque cursor of this entry." })
  cursor!: string;

  @Field(() => LedgerEntry, { description: "The entry." })
  node!: LedgerEntry;
}

@ObjectType({ description: "A page of ledger entries, newest first." })
export class LedgerConnection {
  @Field(() => [LedgerEdge], { description: "The entries of this page." })
  edges!: LedgerEdge[];

  @Field(() => PageInfo, { description: "Paging information." })
  pageInfo!: PageInfo;
}
