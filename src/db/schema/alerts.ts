import { sql } from "drizzle-orm";
import { bigint, boolean, check, index, jsonb, pgTable, text, timestamp, uuid } from "drizzle-orm/pg-core";

export const ALERT_KINDS = [
  "USAGE_SPIKE",
  "ESTIMATE_MISMATCH",
  "FAILED_TRANSACTION",
  "LOW_BALANCE",
  "BALANCE_DEPLETED",
  "BALANCE_RECOVERED",
] as const;
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
    /**
     * False for balance alerts the ledger trigger stored (drizzle/0004) until one instance claims them
     * to log and post them: each is announced once, however many instances hear the notification.
     */
    announced: boolean("announced").notNull().default(true),
  },
  (t) => [
    index("credit_alerts_seq_idx").on(t.seq),
    index("credit_alerts_sub_seq_idx").on(t.subscriptionId, t.seq),
    index("credit_alerts_unannounced_idx").on(t.seq).where(sql`not ${t.announced}`),
    check(
      "credit_alerts_kind_check",
      sql`${t.kind} in ('USAGE_SPIKE', 'ESTIMATE_MISMATCH', 'FAILED_TRANSACTION', 'LOW_BALANCE', 'BALANCE_DEPLETED', 'BALANCE_RECOVERED')`,
    ),
  ],
);
