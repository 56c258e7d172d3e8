import { Field, ID, Int, ObjectType } from "type-graphql";

@ObjectType({ description: "A balance that differs from the sum of its ledger entries." })
export class LedgerMismatch {
  @Field(() => ID, { description: "The subscription." })
  subscriptionId!: string;

  @Field(() => String, { description: "The credit type." })
  type!: string;

  @Field(() => Int, { description: "The stored balance." })
  balance!: number;

  @Field(() => Int, {
    description:
      "The sum of the balance's ledger entries. A sum beyond Int's range (only a ledger changed outside the server has one) is shown as -2147483648 or 2147483647; the ledger.audit_mismatch log line has it exactly.",
  })
  ledgerSum!: number;
}

@ObjectType({ description: "Result of comparing every balance with its ledger." })
export class LedgerAuditReport {
  @Field(() => Int, { description: "Balances compared." })
  checkedBalances!: number;

  @Field(() => [LedgerMismatch], { description: "Balances that differ from their ledger." })
  mismatches!: LedgerMismatch[];

  @Field(() => Boolean, { description: "True when there is no mismatch." })
  ok!: boolean;
}
