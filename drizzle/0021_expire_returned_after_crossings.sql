-- ---------------------------------------------------------------------------------------------
-- Credits given back to an expired grant expire AFTER the returning statement's balance alerts and
-- live-balance item are written, so that the crossings are raised in the order of the entries.
--
-- An outside audit: a balance's only credit, PROMOTIONAL and expiring in seconds, is spent (1 -> 0,
-- BALANCE_DEPLETED); once the grant has expired, an admin refunds the debit (REFUND +1 -> 1, then, in
-- the same statement, EXPIRATION -1 -> 0); then a grant of 5 (0 -> 5). The alerts stored were
-- DEPLETED (debit), DEPLETED (expiration), RECOVERED (refund, "back to 1"): out of the entries'
-- order, the balance's alert state left "recovered" at a balance of 0, and the grant's real recovery
-- raised no BALANCE_RECOVERED at all. Expected (docs/live-balance.md): each crossing once, in the
-- order of the entries: DEPLETED (debit), RECOVERED (refund), DEPLETED (expiration), RECOVERED
-- (grant). A settlement's RELEASE into an expired grant (credit_settle) did the same.
--
-- Why: the EXPIRATION was written by credit_ledger_expire_returned (0005, 0016), an AFTER INSERT
-- trigger FOR EACH ROW. PostgreSQL fires a statement's AFTER ROW triggers before its AFTER STATEMENT
-- triggers, so the EXPIRATION's INSERT, a nested statement, ran (and its own statement trigger
-- credit_ledger_balance_changes derived its crossings from a transition table holding only the
-- EXPIRATION) before the returning statement's credit_ledger_balance_changes derived the REFUND's.
-- The REFUND's RECOVERED came last and closed the alert the EXPIRATION had just (re)opened. Its
-- live-balance outbox item also came after the EXPIRATION's, with the lower seq: a hub drops such an
-- item as older news, so the REFUND's crossing was never pushed.
--
-- Fix: the EXPIRATIONs are written by the statement-level refund-limit trigger
-- (credit_ledger_refund_limit -> credit_ledger_check_returns), after its check. AFTER STATEMENT
-- triggers of one event fire in the alphabetical order of their names, so credit_ledger_balance_changes
-- has already handled the statement's own entries (alerts, threshold state, outbox item) when
-- credit_ledger_refund_limit writes the EXPIRATIONs, whose nested statements are handled after them:
-- alerts and live items in the order of the entries' seq (every EXPIRATION comes after all the
-- entries of the statement that returned the credits). Keep that name order if a trigger is added
-- or renamed. Each EXPIRATION is the one the row trigger wrote (same columns, one per returning
-- entry, in seq order), and credits.returned_expired is still raised for credit_settle.
--
-- Cost: nothing more on the common path. The row trigger stays, with the same WHEN (evaluated per
-- row as before, so statements with no return into an expired grant never call it); it only raises
-- a transaction-local flag, credits.expire_returned. The refund-limit trigger runs its queries
-- unchanged: a hold statement leaves at its first look, exactly as before; a statement of returns
-- reads the flag (one GUC read, no query) after its check, and looks for returns into expired grants
-- only when it is raised. (Finding them with the trigger's first query instead made that trigger a
-- few microseconds slower on every hold statement under EXPLAIN ANALYZE; with a query of their own,
-- on every settlement.) The flag is left raised for the rest of the transaction: a later statement
-- of returns then looks once more and finds nothing, and the returns of a ledger insert whose row
-- triggers fire before another insert's statement triggers (two in one query) are never missed.
-- ---------------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION credit_ledger_expire_returned() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  -- This statement gave credits back to an expired grant: credit_ledger_check_returns expires them
  -- once the statement's own entries are accounted for (see the top of this migration).
  PERFORM set_config('credits.expire_returned', 'on', true);
  RETURN NULL;
END;
$$;
--> statement-breakpoint
-- The refund limit (0010, unchanged), then the expiry of credits returned to expired grants (the body
-- of credit_ledger_expire_returned in 0016, for each such return of the statement).
CREATE OR REPLACE FUNCTION credit_ledger_check_returns() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  bad record;
  ret record;
  draw jsonb;
  total integer;
  expired jsonb;
  balance_now integer;
BEGIN
  -- Most statements (every hold) return nothing: one look at the new rows and done.
  SELECT n.kind, n.refund_of INTO bad FROM new_entries n WHERE n.kind IN ('REFUND', 'RELEASE') ORDER BY n.refund_of NULLS FIRST LIMIT 1;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  IF bad.refund_of IS NULL THEN
    RAISE EXCEPTION 'a % entry must name the debit it returns credits of', bad.kind USING ERRCODE = 'check_violation';
  END IF;

  PERFORM 1
     FROM credit_ledger d
    WHERE (d.subscription_id, d.id) IN (SELECT n.subscription_id, n.refund_of FROM new_entries n WHERE n.kind IN ('REFUND', 'RELEASE'))
    ORDER BY d.subscription_id, d.id
      FOR UPDATE OF d;

  SELECT r.kind, r.refund_of, r.amount, d.kind AS debit_kind, d.credit_type AS debit_type, r.credit_type,
         -d.amount AS debited, t.returned
    INTO bad
    FROM (SELECT n.subscription_id, n.refund_of, n.credit_type, min(n.kind) AS kind, sum(n.amount) AS amount
            FROM new_entries n
           WHERE n.kind IN ('REFUND', 'RELEASE')
           GROUP BY n.subscription_id, n.refund_of, n.credit_type) r
    LEFT JOIN credit_ledger d ON d.subscription_id = r.subscription_id AND d.id = r.refund_of
    CROSS JOIN LATERAL (
      SELECT coalesce(sum(x.amount), 0) AS returned FROM credit_ledger x
       WHERE x.subscription_id = r.subscription_id AND x.refund_of = r.refund_of AND x.kind IN ('REFUND', 'RELEASE')) t
   WHERE d.id IS NULL OR d.kind <> 'DEBIT' OR d.credit_type <> r.credit_type OR t.returned > -d.amount
   LIMIT 1;
  IF FOUND THEN
    IF bad.debit_kind IS DISTINCT FROM 'DEBIT' OR bad.debit_type <> bad.credit_type THEN
      RAISE EXCEPTION 'refund_of % is not a DEBIT of this subscription and credit type', bad.refund_of
        USING ERRCODE = 'check_violation';
    END IF;
    RAISE EXCEPTION '% of % credits exceeds the % left on debit %', bad.kind, bad.amount, bad.debited - (bad.returned - bad.amount), bad.refund_of
      USING ERRCODE = 'check_violation', CONSTRAINT = 'credit_ledger_refund_limit';
  END IF;

  -- Raised by credit_ledger_expire_returned (row trigger) when a return of this transaction gave
  -- credits back to an expired grant; usually not.
  IF current_setting('credits.expire_returned', true) IS DISTINCT FROM 'on' THEN
    RETURN NULL;
  END IF;
  -- Credits given back to an expired grant expire at once: one EXPIRATION after each such return, in
  -- the order of the returns. This trigger fires after credit_ledger_balance_changes (name order), so
  -- the returns' crossings and live item are written before the EXPIRATIONs' (see the top of
  -- 0021_expire_returned_after_crossings.sql). The statement has written its balance rows already, so
  -- changing them here never collides with its own update of them.
  FOR ret IN SELECT n.subscription_id, n.credit_type, n.operation, n.actor_id, n.request_id, n.draws
               FROM new_entries n
              WHERE n.kind IN ('REFUND', 'RELEASE') AND n.draws @> '[{"expired": true}]'::jsonb
              ORDER BY n.seq LOOP
    total := 0;
    expired := '[]'::jsonb;
    FOR draw IN SELECT value FROM jsonb_array_elements(ret.draws) WHERE value ? 'expired' LOOP
      UPDATE credit_grants SET remaining = remaining - (draw ->> 'amount')::integer
       WHERE subscription_id = ret.subscription_id AND id = (draw ->> 'grantId')::uuid;
      expired := expired || jsonb_build_object('grantId', draw -> 'grantId', 'amount', (draw ->> 'amount')::integer);
      total := total + (draw ->> 'amount')::integer;
    END LOOP;
    UPDATE credit_balances SET balance = balance - total, updated_at = now()
     WHERE subscription_id = ret.subscription_id AND credit_type = ret.credit_type
    RETURNING balance INTO balance_now;
    INSERT INTO credit_ledger (subscription_id, credit_type, kind, amount, balance_after, operation, actor_id, reason, request_id, draws)
    VALUES (ret.subscription_id, ret.credit_type, 'EXPIRATION', -total, balance_now, ret.operation, ret.actor_id,
            'credits returned to an expired grant', ret.request_id, expired);
    -- Tells credit_settle, which wrote the return, that the balance changed again after its entries.
    PERFORM set_config('credits.returned_expired', 'on', true);
  END LOOP;
  RETURN NULL;
END;
$$;
