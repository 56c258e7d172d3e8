CREATE TABLE "credit_alerts" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"seq" bigint GENERATED ALWAYS AS IDENTITY (sequence name "credit_alerts_seq_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"subscription_id" uuid,
	"kind" text NOT NULL,
	"message" text NOT NULL,
	"details" jsonb,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "credit_alerts_kind_check" CHECK ("credit_alerts"."kind" in ('USAGE_SPIKE', 'ESTIMATE_MISMATCH', 'FAILED_TRANSACTION'))
);
--> statement-breakpoint
CREATE TABLE "credit_balances" (
	"subscription_id" uuid NOT NULL,
	"credit_type" text NOT NULL,
	"balance" integer DEFAULT 0 NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "credit_balances_pk" PRIMARY KEY("subscription_id","credit_type"),
	CONSTRAINT "credit_balances_balance_nonnegative" CHECK ("credit_balances"."balance" >= 0)
);
--> statement-breakpoint
CREATE TABLE "idempotency_keys" (
	"actor_id" text NOT NULL,
	"key" text NOT NULL,
	"field_path" text NOT NULL,
	"request_hash" text NOT NULL,
	"state" text DEFAULT 'PENDING' NOT NULL,
	"result" jsonb,
	"charge" jsonb,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	CONSTRAINT "idempotency_keys_pk" PRIMARY KEY("actor_id","key","field_path"),
	CONSTRAINT "idempotency_keys_state_check" CHECK ("idempotency_keys"."state" in ('PENDING', 'DONE'))
);
--> statement-breakpoint
CREATE TABLE "billing_subscriptions" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"owner_id" text NOT NULL,
	"plan" text NOT NULL,
	"status" text DEFAULT 'ACTIVE' NOT NULL,
	"status_reason" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "billing_subscriptions_status_check" CHECK ("billing_subscriptions"."status" in ('ACTIVE', 'SUSPENDED', 'CANCELLED'))
);
--> statement-breakpoint
CREATE TABLE "credit_ledger" (
	"subscription_id" uuid NOT NULL,
	"id" uuid DEFAULT gen_random_uuid() NOT NULL,
	"seq" bigint GENERATED ALWAYS AS IDENTITY (sequence name "credit_ledger_seq_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"credit_type" text NOT NULL,
	"kind" text NOT NULL,
	"amount" integer NOT NULL,
	"balance_after" integer NOT NULL,
	"operation" text,
	"estimated" integer,
	"actor_id" text,
	"admin_override" boolean DEFAULT false NOT NULL,
	"reason" text,
	"refund_of" uuid,
	"request_id" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "credit_ledger_pk" PRIMARY KEY("subscription_id","id"),
	CONSTRAINT "credit_ledger_kind_check" CHECK ("credit_ledger"."kind" in ('GRANT', 'DEBIT', 'REFUND', 'ADJUSTMENT')),
	CONSTRAINT "credit_ledger_balance_after_nonnegative" CHECK ("credit_ledger"."balance_after" >= 0),
	CONSTRAINT "credit_ledger_amount_sign" CHECK (("credit_ledger"."kind" = 'DEBIT' and "credit_ledger"."amount" <= 0) or ("credit_ledger"."kind" in ('GRANT', 'REFUND') and "credit_ledger"."amount" >= 0) or "credit_ledger"."kind" = 'ADJUSTMENT')
);
--> statement-breakpoint
CREATE TABLE "pending_charges" (
	"subscription_id" uuid NOT NULL,
	"entry_id" uuid NOT NULL,
	"credit_type" text NOT NULL,
	"amount" integer NOT NULL,
	"operation" text,
	"actor_id" text,
	"request_id" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "pending_charges_pk" PRIMARY KEY("subscription_id","entry_id")
);
--> statement-breakpoint
ALTER TABLE "credit_balances" ADD CONSTRAINT "credit_balances_subscription_id_billing_subscriptions_id_fk" FOREIGN KEY ("subscription_id") REFERENCES "public"."billing_subscriptions"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "credit_alerts_seq_idx" ON "credit_alerts" USING btree ("seq");--> statement-breakpoint
CREATE INDEX "credit_alerts_sub_seq_idx" ON "credit_alerts" USING btree ("subscription_id","seq");--> statement-breakpoint
CREATE INDEX "idempotency_keys_expires_idx" ON "idempotency_keys" USING btree ("expires_at");--> statement-breakpoint
CREATE INDEX "billing_subscriptions_owner_idx" ON "billing_subscriptions" USING btree ("owner_id");--> statement-breakpoint
CREATE INDEX "credit_ledger_id_idx" ON "credit_ledger" USING btree ("id");--> statement-breakpoint
CREATE INDEX "credit_ledger_sub_seq_idx" ON "credit_ledger" USING btree ("subscription_id","seq");--> statement-breakpoint
CREATE INDEX "credit_ledger_sub_created_idx" ON "credit_ledger" USING btree ("subscription_id","created_at");--> statement-breakpoint
CREATE INDEX "credit_ledger_created_idx" ON "credit_ledger" USING btree ("created_at");--> statement-breakpoint
CREATE INDEX "credit_ledger_refund_of_idx" ON "credit_ledger" USING btree ("subscription_id","refund_of") WHERE "credit_ledger"."refund_of" is not null;--> statement-breakpoint
CREATE INDEX "pending_charges_created_idx" ON "pending_charges" USING btree ("created_at");