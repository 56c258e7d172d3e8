-- Refunds by the debit they return, covering `amount` (INCLUDE is written here by hand: drizzle's
-- index builder has no INCLUDE): the refund-limit trigger and the usage figures read refunds from
-- the index alone. Replaces the looser refund_of index; see docs/usage-queries.md.
DROP INDEX "credit_ledger_refund_of_idx";--> statement-breakpoint
CREATE INDEX "credit_ledger_refunds_idx" ON "credit_ledger" USING btree ("subscription_id","refund_of") INCLUDE ("amount") WHERE "credit_ledger"."kind" = 'REFUND';
