import { sql } from "drizzle-orm";
import { bigint, check, index, jsonb, pgTable, text, timestamp, uuid } from "drizzle-orm/pg-core";

export const ALERT_KINDS = ["USAGE_SPIKE", "ESTIMATE_MISMATCH", "FAILED_TRANSACTION"] as const;
export type AlertKindValue = (typeof ALERT_KINDS)[number];

/** Recorded anomalies, queryable through creditAlerts. `seq` gives stable newest-first pagination. */
export const creditAlerts = pgTable(
  "credit_alerts",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    seq: bigint("seq", { mode: "number" }).generatedAlwaysAsIdentity(),
    subscriptionId: uuid("subscription_id"),
    kind: text("kind").$type<AlertKindValue>().notNull(),
    message: text("message").notNull(),
    details: jsonb("details").$type<Record<string, unknown>>(),
    createdAt: timestamp("created_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
  },
  (t) => [
    index("credit_alerts_seq_idx").on(t.seq),
    index("credit_alerts_sub_seq_idx").on(t.subscriptionId, t.seq),
    check("credit_alerts_kind_check", sql`${t.kind} in ('USAGE_SPIKE', 'ESTIMATE_MISMATCH', 'FAILED_TRANSACTION')`),
  ],
);
