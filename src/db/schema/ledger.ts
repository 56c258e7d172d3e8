import { sql } from "drizzle-orm";
import { bigint, boolean, check, index, integer, pgTable, primaryKey, text, timestamp, uuid } from "drizzle-orm/pg-core";

export const LEDGER_KINDS = ["GRANT", "DEBIT", "REFUND", "ADJUSTMENT", "RELEASE"] as const;
export type LedgerKindValue = (typeof LEDGER_KINDS)[number];

/**
 * The append-only ledger: every change to a balance is one row here, written in the same statement
 * or transaction as the balance change. Triggers (see drizzle/0001) refuse UPDATE, DELETE and
 * TRUNCATE, and refuse a refund or release larger than what its debit has left (drizzle/0003).
 * `refund_of` names the debit a REFUND or RELEASE returns credits of.
 *
 * `seq` orders entries for keyset pagination: it only grows, so a cursor stays valid while new
 * entries arrive.
 */
export const creditLedger = pgTable(
  "credit_ledger",
  {
    subscriptionId: uuid("subscription_id").notNull(),
    id: uuid("id").notNull().defaultRandom(),
    seq: bigint("seq", { mode: "number" }).generatedAlwaysAsIdentity(),
    creditType: text("credit_type").notNull(),
    kind: text("kind").$type<LedgerKindValue>().notNull(),
    amount: integer("amount").notNull(),
    balanceAfter: integer("balance_after").notNull(),
    operation: text("operation"),
    estimated: integer("estimated"),
    actorId: text("actor_id"),
    adminOverride: boolean("admin_override").notNull().default(false),
    reason: text("reason"),
    refundOf: uuid("refund_of"),
    requestId: text("request_id"),
    createdAt: timestamp("created_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ name: "credit_ledger_pk", columns: [t.subscriptionId, t.id] }),
    index("credit_ledger_id_idx").on(t.id),
    index("credit_ledger_sub_seq_idx").on(t.subscriptionId, t.seq),
    index("credit_ledger_sub_created_idx").on(t.subscriptionId, t.createdAt),
    index("credit_ledger_created_idx").on(t.createdAt),
    // Refunds by the debit they return: read by the refund-limit trigger and by usage figures, which
    // both filter on kind = 'REFUND' (docs/usage-queries.md has the plans).
    index("credit_ledger_refunds_idx").on(t.subscriptionId, t.refundOf).where(sql`${t.kind} = 'REFUND'`),
    // Releases by the debit whose hold they return (the same trigger and usage figures read them).
    index("credit_ledger_releases_idx").on(t.subscriptionId, t.refundOf).where(sql`${t.kind} = 'RELEASE'`),
    check("credit_ledger_kind_check", sql`${t.kind} in ('GRANT', 'DEBIT', 'REFUND', 'ADJUSTMENT', 'RELEASE')`),
    check("credit_ledger_balance_after_nonnegative", sql`${t.balanceAfter} >= 0`),
    check(
      "credit_ledger_amount_sign",
      sql`(${t.kind} = 'DEBIT' and ${t.amount} <= 0) or (${t.kind} in ('GRANT', 'REFUND', 'RELEASE') and ${t.amount} >= 0) or ${t.kind} = 'ADJUSTMENT'`,
    ),
  ],
);
