-- ---------------------------------------------------------------------------------------------
-- Idempotency-Key claims bound to the instance lease their call holds under
-- (src/idempotency/idempotency-store.ts, src/ledger/coalescing-charge-ledger.ts).
--
-- A metered call's claim records the lease of the instance that made it (instance_id) and when the
-- database saw it (claimed_at). The call's holds are taken under that lease only, so once the lease
-- has expired the call can hold nothing more: if none of its holds stands (it died before holding,
-- or recovery refunded what it held), the claim is abandoned and a retry takes it over at once,
-- instead of answering CONFLICT until CHARGE_SETTLE_TIMEOUT.
--
-- The two sides meet on an advisory lock per lease: every hold statement takes it shared and then
-- checks, by the clock, that its lease is still live (credit_lease_guard); a takeover takes it
-- exclusive (credit_claim_abandoned), which waits for the holds under that lease still running, and
-- only then looks for the call's DEBITs, with a fresh snapshot. A hold that comes after the lock
-- finds its lease expired and is refused. So a retry never takes over a key whose call is still
-- holding, and no hold of the old call can commit after the takeover looked.
-- ---------------------------------------------------------------------------------------------
ALTER TABLE "idempotency_keys" ADD COLUMN "instance_id" uuid;--> statement-breakpoint
ALTER TABLE "idempotency_keys" ADD COLUMN "claimed_at" timestamp with time zone;--> statement-breakpoint
-- Called by the hold statement (src/ledger/hold.ts) before credit_hold, with the lease its holds are
-- recorded under; returns that lease. Null: holds without a lease (tools, tests), nothing checked.
-- Raises SQLSTATE CL001 when the lease has expired: nothing is held, and the server takes a new lease.
CREATE OR REPLACE FUNCTION credit_lease_guard(p_instance uuid) RETURNS uuid
LANGUAGE plpgsql AS $$
BEGIN
  IF p_instance IS NULL THEN
    RETURN NULL;
  END IF;
  PERFORM pg_advisory_xact_lock_shared(hashtextextended('credit_lease:' || p_instance::text, 0));
  IF NOT EXISTS (SELECT 1 FROM instance_leases l WHERE l.id = p_instance AND l.expires_at > clock_timestamp()) THEN
    RAISE EXCEPTION 'instance lease % has expired: holds under it are refused', p_instance USING ERRCODE = 'CL001';
  END IF;
  RETURN p_instance;
END;
$$;
--> statement-breakpoint
-- True when the claim made under lease p_instance at p_claimed_at (database time) by request
-- p_request is abandoned: the lease has expired and no DEBIT of the request made since the claim
-- stands unrefunded. While the lease lives the answer is false at once, without the lock, so
-- retries of a key whose call is running never keep its instance's holds waiting.
CREATE OR REPLACE FUNCTION credit_claim_abandoned(p_instance uuid, p_claimed_at timestamptz, p_request text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
  IF p_instance IS NULL OR p_claimed_at IS NULL OR p_request IS NULL THEN
    RETURN false;
  END IF;
  IF EXISTS (SELECT 1 FROM instance_leases l WHERE l.id = p_instance AND l.expires_at > clock_timestamp()) THEN
    RETURN false;
  END IF;
  -- Waits for the hold statements under the lease still running; any later one is refused.
  PERFORM pg_advisory_xact_lock(hashtextextended('credit_lease:' || p_instance::text, 0));
  -- A statement of its own, so its snapshot sees what those holds committed.
  RETURN NOT EXISTS (
    SELECT 1 FROM credit_ledger d
     WHERE d.created_at >= p_claimed_at AND d.request_id = p_request AND d.kind = 'DEBIT'
       AND NOT EXISTS (SELECT 1 FROM credit_ledger r
                        WHERE r.subscription_id = d.subscription_id AND r.refund_of = d.id AND r.kind = 'REFUND'));
END;
$$;
