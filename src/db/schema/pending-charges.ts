import { integer, pgTable, primaryKey, text, timestamp, uuid, index } from "drizzle-orm/pg-core";

/**
 * Debits that are not settled yet. The debit statement inserts a row here together with its DEBIT
 * entry; success deletes it, a refund deletes it, and the recovery pass refunds rows whose instance's
 * lease expired (their process died) or that are older than CHARGE_SETTLE_TIMEOUT. The ledger itself stays append-only.
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
    /** The lease of the instance that holds it (instance_leases.id); null for holds taken outside a server (tools, tests). */
    instanceId: uuid("instance_id"),
    createdAt: timestamp("created_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ name: "pending_charges_pk", columns: [t.subscriptionId, t.entryId] }),
    index("pending_charges_created_idx").on(t.createdAt),
  ],
);
