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
  valuesConfig: {
    ACTIVE: { description: "Can spend credits." },
    SUSPENDED: { description: "Paused by an admin: its calls are refused (FORBIDDEN) until it is made ACTIVE again." },
    CANCELLED: { description: "Ended: its calls are refused (FORBIDDEN) and a plan no longer renews it. An admin can make it ACTIVE again." },
  },
});

export enum LedgerKind {
  GRANT = "GRANT",
  DEBIT = "DEBIT",
  REFUND = "REFUND",
  ADJUSTMENT = "ADJUSTMENT",
  RELEASE = "RELEASE",
  EXPIRATION = "EXPIRATION",
}
registerEnumType(LedgerKind, {
  name: "LedgerKind",
  description: "What kind of change a ledger entry records.",
  valuesConfig: {
    GRANT: { description: "Adds credits as a new grant (an admin grant, a plan period, a rollover, a subscription's initial credits)." },
    DEBIT: { description: "Holds a metered call's price before it runs (negative); its RELEASE or REFUND entries return part or all of it." },
    REFUND: { description: "Returns a hold, or part of a settled debit: a system error, arguments refused by validation in the resolver, the resolver refusing its caller, a result that never reached the client, an expired hold, or an admin's refundCharge." },
    ADJUSTMENT: { description: "A correction: an admin's adjustCredits (positive adds a grant, negative draws like a debit), or a plan renewal drawing the unused plan credits it carries into the next period's rollover grant (no actor)." },
    RELEASE: { description: "Returns the unused part of a debit's hold after the call settled at its actual cost." },
    EXPIRATION: { description: "Removes what was left of a grant when it expired." },
  },
});

export enum GrantCategory {
  PAID = "PAID",
  PROMOTIONAL = "PROMOTIONAL",
  PLAN = "PLAN",
}
registerEnumType(GrantCategory, {
  name: "GrantCategory",
  description: "Where a grant's credits come from.",
  valuesConfig: {
    PAID: { description: "Bought credits." },
    PROMOTIONAL: { description: "Free or promotional credits." },
    PLAN: { description: "A plan's allowance for one period." },
  },
});

export enum UsageGroupBy {
  OPERATION = "OPERATION",
  TYPE = "TYPE",
  DAY = "DAY",
  USER = "USER",
  SUBSCRIPTION = "SUBSCRIPTION",
}
registerEnumType(UsageGroupBy, {
  name: "UsageGroupBy",
  description: "How usage is grouped.",
  valuesConfig: {
    OPERATION: { description: "By metered operation, e.g. Mutation.runAiTask." },
    TYPE: { description: "By credit type." },
    DAY: { description: "By calendar day in the query's timeZone (UTC by default)." },
    USER: { description: "By the calling user (token subject)." },
    SUBSCRIPTION: { description: "By subscription." },
  },
});

/** The three alerts a balance's threshold raises; also the values of the live event's `threshold`. */
export const THRESHOLD_CROSSING_DESCRIPTIONS = {
  LOW_BALANCE: { description: "A change took a balance from at or above its low-balance threshold to below it." },
  BALANCE_DEPLETED: { description: "A change took a balance to 0." },
  BALANCE_RECOVERED: {
    description:
      "After LOW_BALANCE or BALANCE_DEPLETED, a change brought the balance back to or above its threshold (above 0 when none is set).",
  },
} as const;

export enum CreditAlertKind {
  USAGE_SPIKE = "USAGE_SPIKE",
  ESTIMATE_MISMATCH = "ESTIMATE_MISMATCH",
  FAILED_TRANSACTION = "FAILED_TRANSACTION",
  LOW_BALANCE = "LOW_BALANCE",
  BALANCE_DEPLETED = "BALANCE_DEPLETED",
  BALANCE_RECOVERED = "BALANCE_RECOVERED",
}
registerEnumType(CreditAlertKind, {
  name: "CreditAlertKind",
  description: "What an alert is about.",
  valuesConfig: {
    USAGE_SPIKE: { description: "A subscription's credits in the last window exceeded a multiple of its trailing average." },
    ESTIMATE_MISMATCH: { description: "A call's metered actual cost exceeded its hold (it was charged the hold)." },
    FAILED_TRANSACTION: { description: "A hold, settlement or refund failed on the database, or a hold outlived CHARGE_SETTLE_TIMEOUT." },
    ...THRESHOLD_CROSSING_DESCRIPTIONS,
  },
});

export enum AiModel {
  SMALL = "SMALL",
  LARGE = "LARGE",
}
registerEnumType(AiModel, {
  name: "AiModel",
  description: "AI model size; LARGE costs five times as much.",
  valuesConfig: {
    SMALL: { description: "The default model: 1 credit per 1,000 tokens (prompt and output)." },
    LARGE: { description: "The large model: 5 credits per 1,000 tokens." },
  },
});
