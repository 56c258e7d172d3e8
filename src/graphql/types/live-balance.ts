import { Field, ID, InputType, Int, ObjectType, registerEnumType } from "type-graphql";
import type { EntryRef } from "../../live/balance-change.js";
import { THRESHOLD_CROSSING_DESCRIPTIONS } from "./enums.js";
import { LedgerEntry } from "./ledger.js";

export enum BalanceThresholdCrossing {
  LOW_BALANCE = "LOW_BALANCE",
  BALANCE_DEPLETED = "BALANCE_DEPLETED",
  BALANCE_RECOVERED = "BALANCE_RECOVERED",
}
registerEnumType(BalanceThresholdCrossing, {
  name: "BalanceThresholdCrossing",
  description: "A balance crossing its low-balance threshold, reaching 0, or coming back.",
  valuesConfig: THRESHOLD_CROSSING_DESCRIPTIONS,
});

@ObjectType({ description: "The latest state of one balance after one or more ledger entries." })
export class CreditBalanceEvent {
  @Field(() => ID, { description: "The subscription whose balance changed." })
  subscriptionId!: string;

  @Field(() => String, { description: "Credit type of the balance." })
  type!: string;

  @Field(() => Int, { description: "The balance after the newest entry." })
  balance!: number;

  @Field(() => Int, { description: "Ledger entries folded into this event (1 unless coalesced)." })
  entries!: number;

  // `lastEntry` is a field resolver (live-balance-resolver.ts): the notification carries only part of it.
  @Field(() => LedgerEntry, { description: "The newest of those entries." })
  lastEntry!: EntryRef;

  @Field(() => BalanceThresholdCrossing, {
    nullable: true,
    description: "Set when this change crossed the balance's low-balance threshold, emptied it, or brought it back: the last crossing of the change, so BALANCE_DEPLETED when one change does both (creditAlerts stores LOW_BALANCE too).",
  })
  threshold?: BalanceThresholdCrossing | null;
}

@InputType({ description: "The low-balance threshold of one balance." })
export class LowBalanceThresholdInput {
  @Field(() => ID, { description: "The subscription." })
  subscriptionId!: string;

  @Field(() => String, { description: "Credit type of the balance." })
  type!: string;

  @Field(() => Int, { description: "Notify when the balance falls below this; 0 turns the notification off." })
  lowBalance!: number;
}
