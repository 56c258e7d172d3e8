import { sql } from "drizzle-orm";
import { check, index, pgTable, text, timestamp, uuid } from "drizzle-orm/pg-core";

export const SUBSCRIPTION_STATUSES = ["ACTIVE", "SUSPENDED", "CANCELLED"] as const;
export type SubscriptionStatusValue = (typeof SUBSCRIPTION_STATUSES)[number];

/** A customer's subscription: the owner of credit balances. Its id is the shard key of every credit table. */
export const billingSubscriptions = pgTable(
  "billing_subscriptions",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    ownerId: text("owner_id").notNull(),
    plan: text("plan").notNull(),
    status: text("status").$type<SubscriptionStatusValue>().notNull().default("ACTIVE"),
    statusReason: text("status_reason"),
    createdAt: timestamp("created_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
  },
  (t) => [
    index("billing_subscriptions_owner_idx").on(t.ownerId),
    // The admin's search (src/subscriptions/subscription-search.ts): newest first, and owner-id prefixes.
    index("billing_subscriptions_created_idx").on(t.createdAt, t.id),
    index("billing_subscriptions_owner_prefix_idx").using("btree", t.ownerId.op("text_pattern_ops")),
    check("billing_subscriptions_status_check", sql`${t.status} in ('ACTIVE', 'SUSPENDED', 'CANCELLED')`),
  ],
);
