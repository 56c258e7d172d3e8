CREATE TABLE "instance_leases" (
	"id" uuid PRIMARY KEY NOT NULL,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
ALTER TABLE "idempotency_keys" ADD COLUMN "request_id" text;--> statement-breakpoint
ALTER TABLE "pending_charges" ADD COLUMN "instance_id" uuid;--> statement-breakpoint
CREATE INDEX "instance_leases_expires_idx" ON "instance_leases" USING btree ("expires_at");