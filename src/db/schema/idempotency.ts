import { sql } from "drizzle-orm";
import { check, index, jsonb, pgTable, primaryKey, text, timestamp, uuid } from "drizzle-orm/pg-core";

/**
 * Idempotency records: one per (caller, Idempotency-Key, field path). The first request inserts it
 * PENDING; when the field settles it stores the result and the charge, so a retry replays them.
 */
export const idempotencyKeys = pgTable(
  "idempotency_keys",
  {
    actorId: text("actor_id").notNull(),
    key: text("key").notNull(),
    fieldPath: text("field_path").notNull(),
    requestHash: text("request_hash").notNull(),
    /** The request that claimed the key: a stale claim is taken over only once none of its DEBITs stands unrefunded. */
    requestId: text("request_id"),
    /**
     * Chosen by the server for each claim before it is sent: a claim sent again after its answer was
     * lost finds its own row by it (request ids can be the caller's, and are not unique).
     */
    claimId: uuid("claim_id"),
    /**
     * The instance lease (instance_leases) a metered call's claim was made under: its holds are taken
     * under that lease only, so once the lease has expired and none of them stands, the claim is
     * abandoned and a retry takes it over (drizzle/0015_lease_bound_claims.sql). Null for admin
     * mutations, whose write and completion commit together.
     */
    instanceId: uuid("instance_id"),
    /** When the claim was made by the database's clock, as created_at is too (unless a test injects a clock, which stamps created_at): the call's holds came later. */
    claimedAt: timestamp("claimed_at", { withTimezone: true, mode: "date" }),
    state: text("state").$type<"PENDING" | "DONE">().notNull().default("PENDING"),
    result: jsonb("result"),
    charge: jsonb("charge"),
    createdAt: timestamp("created_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
    expiresAt: timestamp("expires_at", { withTimezone: true, mode: "date" }).notNull(),
  },
  (t) => [
    primaryKey({ name: "idempotency_keys_pk", columns: [t.actorId, t.key, t.fieldPath] }),
    index("idempotency_keys_expires_idx").on(t.expiresAt),
    check("idempotency_keys_state_check", sql`${t.state} in ('PENDING', 'DONE')`),
  ],
);
