-- ---------------------------------------------------------------------------------------------
-- credit_plan_renew (0005_grants.sql) once more: the order of its grants and removals now depends
-- on the balance's low-balance threshold.
--
-- Threshold crossings are found statement by statement (0012_balance_change_payload.sql), and a
-- renewal is several statements: the new period's grants (rollover, allowance) and the ended
-- period's credits going out (rollover adjustment, expiration). Any order passes through a balance
-- that is neither where it starts nor where it ends:
--   - out first (0005), a balance of only unused plan credits fell to 0 in between, raising
--     BALANCE_DEPLETED and BALANCE_RECOVERED at every renewal;
--   - grants first, it rises above both ends, which raises LOW_BALANCE and
--     BALANCE_RECOVERED at every renewal when the threshold lies between them: a balance below its
--     threshold before and after the renewal.
-- So: grants first, unless the balance is below its threshold both before and after; then out
-- first, so that it stays below the threshold throughout. What is left: a balance of only plan
-- credits that is below its threshold before and after still passes through 0 on the way
-- (BALANCE_DEPLETED once per renewal, and no recovery, since it stays below the threshold).
-- ---------------------------------------------------------------------------------------------

-- The new period's PLAN grants: up to rolloverMax of the unused credits, and the allowance.
CREATE OR REPLACE FUNCTION credit_plan_renewal_grants(
  p_subscription uuid, p_type text, p_rolled integer, p_allowance integer, p_new_end timestamptz, p_plan text
) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  IF p_rolled > 0 THEN
    PERFORM credit_plan_grant(p_subscription, p_type, p_rolled, p_new_end, 'plan ' || p_plan || ': rollover');
  END IF;
  IF p_allowance > 0 THEN
    PERFORM credit_plan_grant(p_subscription, p_type, p_allowance, p_new_end, 'plan ' || p_plan || ': allowance');
  END IF;
END;
$$;
--> statement-breakpoint

CREATE OR REPLACE FUNCTION credit_plan_renew(
  p_subscription uuid, p_type text, p_old_end timestamptz, p_new_end timestamptz,
  p_allowance integer, p_rollover_max integer, p_plan text
) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  g record;
  unused integer;
  rolled integer;
  need integer;
  take integer;
  draws jsonb := '[]'::jsonb;
  balance_now integer;
  start_balance integer;
  low integer;
  grants_first boolean;
BEGIN
  INSERT INTO credit_balances (subscription_id, credit_type, balance) VALUES (p_subscription, p_type, 0)
  ON CONFLICT (subscription_id, credit_type) DO NOTHING;
  SELECT b.balance INTO start_balance FROM credit_balances b
   WHERE b.subscription_id = p_subscription AND b.credit_type = p_type FOR UPDATE;
  SELECT coalesce(sum(remaining), 0) INTO unused FROM credit_grants
   WHERE subscription_id = p_subscription AND credit_type = p_type AND category = 'PLAN' AND NOT exhausted AND expires_at = p_old_end;
  rolled := least(unused, greatest(p_rollover_max, 0));
  -- Which way round (header above): grants first, unless the balance is below its threshold both
  -- before and after the renewal.
  low := (SELECT t.low_balance FROM credit_balance_thresholds t WHERE t.subscription_id = p_subscription AND t.credit_type = p_type);
  grants_first := low IS NULL OR start_balance >= low OR start_balance - unused + rolled + greatest(p_allowance, 0) >= low;
  IF grants_first THEN
    PERFORM credit_plan_renewal_grants(p_subscription, p_type, rolled, p_allowance, p_new_end, p_plan);
  END IF;
  IF rolled > 0 THEN
    need := rolled;
    FOR g IN SELECT id, remaining FROM credit_grants
              WHERE subscription_id = p_subscription AND credit_type = p_type AND category = 'PLAN' AND NOT exhausted AND expires_at = p_old_end
              ORDER BY priority, created_at, seq LOOP
      take := least(need, g.remaining);
      UPDATE credit_grants SET remaining = remaining - take WHERE subscription_id = p_subscription AND id = g.id;
      draws := draws || jsonb_build_object('grantId', g.id, 'amount', take);
      need := need - take;
      EXIT WHEN need = 0;
    END LOOP;
    UPDATE credit_balances SET balance = balance - rolled, updated_at = now()
     WHERE subscription_id = p_subscription AND credit_type = p_type
    RETURNING balance INTO balance_now;
    INSERT INTO credit_ledger (subscription_id, credit_type, kind, amount, balance_after, reason, draws)
    VALUES (p_subscription, p_type, 'ADJUSTMENT', -rolled, balance_now, 'plan rollover: unused plan credits carried into the next period', draws);
  END IF;
  FOR g IN SELECT id, remaining FROM credit_grants
            WHERE subscription_id = p_subscription AND credit_type = p_type AND category = 'PLAN' AND NOT exhausted AND expires_at = p_old_end
            ORDER BY priority, created_at, seq LOOP
    UPDATE credit_grants SET remaining = 0 WHERE subscription_id = p_subscription AND id = g.id;
    UPDATE credit_balances SET balance = balance - g.remaining, updated_at = now()
     WHERE subscription_id = p_subscription AND credit_type = p_type
    RETURNING balance INTO balance_now;
    INSERT INTO credit_ledger (subscription_id, credit_type, kind, amount, balance_after, reason, draws)
    VALUES (p_subscription, p_type, 'EXPIRATION', -g.remaining, balance_now, 'plan period ended',
            jsonb_build_array(jsonb_build_object('grantId', g.id, 'amount', g.remaining)));
  END LOOP;
  IF NOT grants_first THEN
    PERFORM credit_plan_renewal_grants(p_subscription, p_type, rolled, p_allowance, p_new_end, p_plan);
  END IF;
END;
$$;
