-- ---------------------------------------------------------------------------------------------
-- credit_plan_renew (0005_grants.sql) once more, with one change: the new period's grants
-- (rollover, allowance) are written before the ended period's plan credits are taken out (rollover
-- adjustment, expiration), instead of after.
--
-- Each of those ledger inserts is a statement of its own, and the live-balance trigger
-- (0012_balance_change_payload.sql) finds threshold crossings statement by statement. Taking the old
-- credits out first took a balance made only of unused plan credits down to 0 between the
-- statements of one renewal: every renewal of such a subscription raised BALANCE_DEPLETED and then
-- BALANCE_RECOVERED (stored, logged, pushed and sent to the webhook), though no client could ever
-- see that balance. Granting first, the balance goes up, then down to where it ends, and only a
-- real crossing (the renewed balance below the threshold, or back at or above it) is announced.
-- ---------------------------------------------------------------------------------------------

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
BEGIN
  INSERT INTO credit_balances (subscription_id, credit_type, balance) VALUES (p_subscription, p_type, 0)
  ON CONFLICT (subscription_id, credit_type) DO NOTHING;
  PERFORM 1 FROM credit_balances WHERE subscription_id = p_subscription AND credit_type = p_type FOR UPDATE;
  SELECT coalesce(sum(remaining), 0) INTO unused FROM credit_grants
   WHERE subscription_id = p_subscription AND credit_type = p_type AND category = 'PLAN' AND NOT exhausted AND expires_at = p_old_end;
  rolled := least(unused, greatest(p_rollover_max, 0));
  -- The new period's grants first, then the ended period's credits out: the balance never passes
  -- below both where it started and where it ends, so no threshold is crossed on the way.
  IF rolled > 0 THEN
    PERFORM credit_plan_grant(p_subscription, p_type, rolled, p_new_end, 'plan ' || p_plan || ': rollover');
  END IF;
  IF p_allowance > 0 THEN
    PERFORM credit_plan_grant(p_subscription, p_type, p_allowance, p_new_end, 'plan ' || p_plan || ': allowance');
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
END;
$$;
