import { pgTable, timestamp, uuid, index } from "drizzle-orm/pg-core";

/**
 * One row per server instance's lease (DESIGN.md, "Retries and crashes"). An instance renews its row
 * every INSTANCE_LEASE_TTL / 3; once `expires_at` has passed (judged by the database's clock) the
 * instance is taken for dead and the recovery pass refunds the holds it left open. An instance that
 * finds its lease expired takes a new row (a new id) before it holds again; the old id stays dead.
 */
export const instanceLeases = pgTable(
  "instance_leases",
  {
    id: uuid("id").primaryKey(),
    startedAt: timestamp("started_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
    expiresAt: timestamp("expires_at", { withTimezone: true, mode: "date" }).notNull(),
  },
  (t) => [index("instance_leases_expires_idx").on(t.expiresAt)],
);
