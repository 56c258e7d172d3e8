import { sql } from "drizzle-orm";
import { check, integer, pgTable, primaryKey, text, timestamp, uuid } from "drizzle-orm/pg-core";
import { billingSubscriptions } from "./subscriptions.js";

/** One row per (subscription, credit type). The CHECK is the last line of defence: a balance is never negative. */
export const creditBalances = pgTable(
  "credit_balances",
  {
    subscriptionId: uuid("subscription_id")
      .notNull()
      .references(() => billingSubscriptions.id),
    creditType: text("credit_type").notNull(),
    balance: integer("balance").notNull().default(0),
    updatedAt: timestamp("updated_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ name: "credit_balances_pk", columns: [t.subscriptionId, t.creditType] }),
    check("credit_balances_balance_nonnegative", sql`${t.balance} >= 0`),
  ],
);
