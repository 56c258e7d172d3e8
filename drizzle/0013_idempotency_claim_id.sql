-- A claim id the server chooses for each Idempotency-Key claim (src/idempotency/idempotency-store.ts):
-- a claim sent again after its answer was lost finds its own row by it.
ALTER TABLE "idempotency_keys" ADD COLUMN "claim_id" uuid;
