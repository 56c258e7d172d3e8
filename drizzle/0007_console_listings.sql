CREATE INDEX "billing_subscriptions_created_idx" ON "billing_subscriptions" USING btree ("created_at","id");--> statement-breakpoint
CREATE INDEX "billing_subscriptions_owner_prefix_idx" ON "billing_subscriptions" USING btree ("owner_id" text_pattern_ops);--> statement-breakpoint
CREATE INDEX "credit_ledger_seq_idx" ON "credit_ledger" USING btree ("seq");