import { sql } from "drizzle-orm";
import { boolean, check, integer, pgTable, primaryKey, text, timestamp, uuid } from "drizzle-orm/pg-core";

/**
 * Low-balance notification state of the balances that have any: a threshold (setLowBalanceThreshold),
 * or an open LOW_BALANCE / BALANCE_DEPLETED awaiting its BALANCE_RECOVERED. A separate table, not
 * columns of credit_balances, so the ledger trigger (drizzle/0004) that reads it on every insert
 * probes a table holding only the few balances that have such state.
 */
export const creditBalanceThresholds = pgTable(
  "credit_balance_thresholds",
  {
    subscriptionId: uuid("subscription_id").notNull(),
    creditType: text("credit_type").notNull(),
    /** LOW_BALANCE when a change takes the balance from at or above this to below it; null: off. */
    lowBalance: integer("low_balance"),
    /** True after LOW_BALANCE or BALANCE_DEPLETED until BALANCE_RECOVERED: only then is a recovery announced. */
    alerted: boolean("alerted").notNull().default(false),
    updatedAt: timestamp("updated_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ name: "credit_balance_thresholds_pk", columns: [t.subscriptionId, t.creditType] }),
    check("credit_balance_thresholds_low_balance_positive", sql`${t.lowBalance} is null or ${t.lowBalance} > 0`),
  ],
);
