import { integer, pgTable, primaryKey, text, timestamp, uuid, index } from "drizzle-orm/pg-core";

/**
 * Debits that are not settled yet. The debit statement inserts a row here together with its DEBIT
 * entry; success deletes it, a refund deletes it, and the recovery pass refunds rows older than
 * CHARGE_SETTLE_TIMEOUT (their process died). The ledger itself stays append-only.
 */
export const pendingCharges = pgTable(
  "pending_charges",
  {
    subscriptionId: uuid("subscription_id").notNull(),
    entryId: uuid("entry_id").notNull(),
    creditType: text("credit_type").notNull(),
    amount: integer("amount").notNull(),
    operation: text("operation"),
    actorId: text("actor_id"),
    requestId: text("request_id"),
    createdAt: timestamp("created_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ name: "pending_charges_pk", columns: [t.subscriptionId, t.entryId] }),
    index("pending_charges_created_idx").on(t.createdAt),
  ],
);
