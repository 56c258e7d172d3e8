import { sql } from "drizzle-orm";
import { bigint, boolean, check, index, integer, pgTable, primaryKey, text, timestamp, uuid } from "drizzle-orm/pg-core";

export const GRANT_CATEGORIES = ["PAID", "PROMOTIONAL", "PLAN"] as const;
export type GrantCategoryValue = (typeof GRANT_CATEGORIES)[number];

/**
 * Grants (buckets): every credit added to a balance is a grant, and what is left of a balance is the
 * sum of its grants' `remaining`. Debits draw from them in spending order (priority, then earliest
 * expiry with never-expiring last, then oldest); the drawing is done by the database itself, by the
 * ledger's BEFORE INSERT trigger (drizzle/0005_grants.sql), so every statement that writes a ledger
 * entry keeps the grants right without knowing about them. A grant's rows change only while its
 * balance row is locked (every writer locks the balance first), so the balance row's lock orders
 * them all.
 */
export const creditGrants = pgTable(
  "credit_grants",
  {
    subscriptionId: uuid("subscription_id").notNull(),
    id: uuid("id").notNull().defaultRandom(),
    /** Ties of created_at (grants made in one transaction) are broken by creation order. */
    seq: bigint("seq", { mode: "number" }).generatedAlwaysAsIdentity(),
    creditType: text("credit_type").notNull(),
    category: text("category").$type<GrantCategoryValue>().notNull().default("PAID"),
    amount: integer("amount").notNull(),
    remaining: integer("remaining").notNull(),
    /**
     * remaining = 0, kept by the database. The partial indexes below say "not exhausted" rather than
     * "remaining > 0": a draw that leaves credits in the grant then changes no indexed value, so
     * PostgreSQL updates the row in place (HOT) without new index entries, and a hot balance's grant
     * does not pile up dead index entries that every later draw has to step over.
     */
    exhausted: boolean("exhausted").generatedAlwaysAs(sql`remaining = 0`),
    priority: integer("priority").notNull().default(50),
    effectiveAt: timestamp("effective_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
    expiresAt: timestamp("expires_at", { withTimezone: true, mode: "date" }),
    reason: text("reason"),
    /** The ledger entry that created the grant; null for the grants the migration made of old balances. */
    entryId: uuid("entry_id"),
    createdAt: timestamp("created_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ name: "credit_grants_pk", columns: [t.subscriptionId, t.id] }),
    // Spending order, only over grants with credits left: a debit reads the first rows of its balance.
    index("credit_grants_spend_idx")
      .on(t.subscriptionId, t.creditType, t.priority, t.expiresAt, t.createdAt, t.seq)
      .where(sql`not ${t.exhausted}`),
    // The expiry pass: grants with credits left whose time has come.
    index("credit_grants_expiry_idx").on(t.expiresAt).where(sql`not ${t.exhausted} and ${t.expiresAt} is not null`),
    check("credit_grants_category_check", sql`${t.category} in ('PAID', 'PROMOTIONAL', 'PLAN')`),
    check("credit_grants_priority_range", sql`${t.priority} between 0 and 100`),
    check("credit_grants_amount_positive", sql`${t.amount} > 0`),
    check("credit_grants_remaining_nonnegative", sql`${t.remaining} >= 0`),
  ],
);

/**
 * The current period of a subscription on a configured plan: renewal (the recovery pass) grants the
 * next period once `period_end` has passed. Periods are counted from `anchor_at` so calendar months
 * never drift (Jan 31 → Feb 28 → Mar 31).
 */
export const planPeriods = pgTable(
  "plan_periods",
  {
    subscriptionId: uuid("subscription_id").notNull().primaryKey(),
    plan: text("plan").notNull(),
    anchorAt: timestamp("anchor_at", { withTimezone: true, mode: "date" }).notNull(),
    periodNumber: integer("period_number").notNull(),
    periodStart: timestamp("period_start", { withTimezone: true, mode: "date" }).notNull(),
    periodEnd: timestamp("period_end", { withTimezone: true, mode: "date" }).notNull(),
  },
  (t) => [index("plan_periods_end_idx").on(t.periodEnd)],
);
