/** The schema's enums, registered once with type-graphql. */
import { registerEnumType } from "type-graphql";

export enum SubscriptionStatus {
  ACTIVE = "ACTIVE",
  SUSPENDED = "SUSPENDED",
  CANCELLED = "CANCELLED",
}
registerEnumType(SubscriptionStatus, {
  name: "SubscriptionStatus",
  description: "Lifecycle of a subscription. Only ACTIVE subscriptions can spend credits.",
});

export enum LedgerKind {
  GRANT = "GRANT",
  DEBIT = "DEBIT",
  REFUND = "REFUND",
  ADJUSTMENT = "ADJUSTMENT",
  RELEASE = "RELEASE",
}
registerEnumType(LedgerKind, {
  name: "LedgerKind",
  description: "What kind of change a ledger entry records.",
  valuesConfig: { RELEASE: { description: "Returns the unused part of a debit's hold after the call settled at its actual cost." } },
});

export enum UsageGroupBy {
  OPERATION = "OPERATION",
  TYPE = "TYPE",
  DAY = "DAY",
  USER = "USER",
  SUBSCRIPTION = "SUBSCRIPTION",
}
registerEnumType(UsageGroupBy, { name: "UsageGroupBy", description: "How usage is grouped." });

export enum CreditAlertKind {
  USAGE_SPIKE = "USAGE_SPIKE",
  ESTIMATE_MISMATCH = "ESTIMATE_MISMATCH",
  FAILED_TRANSACTION = "FAILED_TRANSACTION",
  LOW_BALANCE = "LOW_BALANCE",
  BALANCE_DEPLETED = "BALANCE_DEPLETED",
  BALANCE_RECOVERED = "BALANCE_RECOVERED",
}
registerEnumType(CreditAlertKind, { name: "CreditAlertKind", description: "What an alert is about." });

export enum AiModel {
  SMALL = "SMALL",
  LARGE = "LARGE",
}
registerEnumType(AiModel, { name: "AiModel", description: "AI model size; LARGE costs five times as much." });
