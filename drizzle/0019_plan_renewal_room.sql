-- ---------------------------------------------------------------------------------------------
-- credit_plan_renew (0018_plan_renewal_order.sql) once more: the cap at the largest balance is
-- computed against the balance once the renewal is done.
--
-- A plan's grant is capped at the room the balance has left (credit_plan_grant, 0016). In a
-- renewal, the new grants went in before the ended period's plan credits went out, and each was
-- capped against the balance of that moment: with allowance 1,000,000,000 and as much rolled over,
-- a balance of a billion unused plan credits got its rollover (2,000,000,000), then 147,483,647 of
-- its allowance (the largest balance, 2,147,483,647), then lost the billion moved out: 1,147,483,647
-- where 2,000,000,000 fits; at the next renewal no allowance at all.
--
-- Now the rollover and the allowance are capped against the balance after the renewal (the ended
-- period's plan credits out, the credits held by open holds counted), and the entries are ordered so
-- that the balance never passes the largest one on the way:
--   - grants first (+rollover, +allowance, -rollover moved, -rest expired), as before, when the
--     balance with both new grants on top of the old credits fits;
--   - out first (-rollover moved, -rest expired, +rollover, +allowance), as before, when the balance
--     is below its low-balance threshold both before and after;
--   - otherwise one of two orders that never rises above both ends, the one whose lowest point is
--     higher (so a balance of only plan credits does not pass through 0 when it need not):
--     move first (-rollover moved, +rollover, -rest expired, +allowance), lowest point the balance
--     less the larger of the rollover and the rest; or
--     expire first (-rest expired, +allowance, -rollover moved, +rollover), lowest point the
--     balance less the rest, or the final balance less the rollover.
-- Each grant is then written where the balance has room for all of it, so credit_plan_grant's own
-- cap only comes into play for the part of the allowance that does not fit at the end (its reason
-- then says "(N of M: capped at the largest balance)", as before). credit_plan_renewal_grants (0018)
-- is no longer called; it is left in place for an instance of the previous version still running.
-- ---------------------------------------------------------------------------------------------

-- Takes p_amounts[i] from the ended period's grant p_ids[i]: one ADJUSTMENT (the rollover moved
-- out) or one EXPIRATION per grant (what does not roll over). The caller holds the balance row.
CREATE OR REPLACE FUNCTION credit_plan_renewal_out(
  p_subscription uuid, p_type text, p_kind text, p_ids uuid[], p_amounts integer[]
) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  i integer;
  total integer := 0;
  draws jsonb := '[]'::jsonb;
  balance_now integer;
BEGIN
  FOR i IN 1 .. coalesce(array_length(p_ids, 1), 0) LOOP
    CONTINUE WHEN p_amounts[i] <= 0;
    UPDATE credit_grants SET remaining = remaining - p_amounts[i] WHERE subscription_id = p_subscription AND id = p_ids[i];
    IF p_kind = 'EXPIRATION' THEN
      UPDATE credit_balances SET balance = balance - p_amounts[i], updated_at = now()
       WHERE subscription_id = p_subscription AND credit_type = p_type
      RETURNING balance INTO balance_now;
      INSERT INTO credit_ledger (subscription_id, credit_type, kind, amount, balance_after, reason, draws)
      VALUES (p_subscription, p_type, 'EXPIRATION', -p_amounts[i], balance_now, 'plan period ended',
              jsonb_build_array(jsonb_build_object('grantId', p_ids[i], 'amount', p_amounts[i])));
    ELSE
      draws := draws || jsonb_build_object('grantId', p_ids[i], 'amount', p_amounts[i]);
      total := total + p_amounts[i];
    END IF;
  END LOOP;
  IF p_kind = 'ADJUSTMENT' AND total > 0 THEN
    UPDATE credit_balances SET balance = balance - total, updated_at = now()
     WHERE subscription_id = p_subscription AND credit_type = p_type
    RETURNING balance INTO balance_now;
    INSERT INTO credit_ledger (subscription_id, credit_type, kind, amount, balance_after, reason, draws)
    VALUES (p_subscription, p_type, 'ADJUSTMENT', -total, balance_now, 'plan rollover: unused plan credits carried into the next period', draws);
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
  start_balance bigint;
  held bigint;
  unused bigint := 0;
  rolled bigint;
  rest bigint;
  granted bigint;
  final_balance bigint;
  room bigint;
  need bigint;
  take bigint;
  ids uuid[] := '{}';
  moved integer[] := '{}';
  expired integer[] := '{}';
  low integer;
  steps text[];
  step text;
BEGIN
  INSERT INTO credit_balances (subscription_id, credit_type, balance) VALUES (p_subscription, p_type, 0)
  ON CONFLICT (subscription_id, credit_type) DO NOTHING;
  SELECT b.balance INTO start_balance FROM credit_balances b
   WHERE b.subscription_id = p_subscription AND b.credit_type = p_type FOR UPDATE;
  held := credit_held(p_subscription, p_type);
  SELECT coalesce(sum(remaining), 0) INTO unused FROM credit_grants
   WHERE subscription_id = p_subscription AND credit_type = p_type AND category = 'PLAN' AND NOT exhausted AND expires_at = p_old_end;
  -- Room once the ended period's credits are out: the rollover, then the allowance, are capped to it.
  room := greatest(2147483647 - held - (start_balance - unused), 0);
  rolled := least(unused, greatest(p_rollover_max, 0), room);
  rest := unused - rolled;
  granted := least(greatest(p_allowance, 0), room - rolled);
  final_balance := start_balance - unused + rolled + granted;
  -- What each of the ended period's grants gives: the rollover from the first in spending order, the rest expires.
  need := rolled;
  FOR g IN SELECT id, remaining FROM credit_grants
            WHERE subscription_id = p_subscription AND credit_type = p_type AND category = 'PLAN' AND NOT exhausted AND expires_at = p_old_end
            ORDER BY priority, created_at, seq LOOP
    take := least(need, g.remaining);
    need := need - take;
    ids := ids || g.id;
    moved := moved || take::integer;
    expired := expired || (g.remaining - take)::integer;
  END LOOP;
  -- The order (header above). R+ / R-: the rollover in / moved out; A+: the allowance; E-: the rest expired.
  low := (SELECT t.low_balance FROM credit_balance_thresholds t WHERE t.subscription_id = p_subscription AND t.credit_type = p_type);
  IF low IS NOT NULL AND start_balance < low AND final_balance < low THEN
    steps := ARRAY['R-', 'E-', 'R+', 'A+'];
  ELSIF start_balance + rolled + granted + held <= 2147483647 THEN
    steps := ARRAY['R+', 'A+', 'R-', 'E-'];
  ELSIF start_balance + held > 2147483647
        OR least(start_balance - rest, final_balance - rolled) > least(start_balance - rolled, start_balance - rest) THEN
    steps := ARRAY['E-', 'A+', 'R-', 'R+'];
  ELSE
    steps := ARRAY['R-', 'R+', 'E-', 'A+'];
  END IF;
  FOREACH step IN ARRAY steps LOOP
    IF step = 'R+' AND rolled > 0 THEN
      PERFORM credit_plan_grant(p_subscription, p_type, rolled::integer, p_new_end, 'plan ' || p_plan || ': rollover');
    ELSIF step = 'A+' AND p_allowance > 0 THEN
      -- The whole allowance: credit_plan_grant caps it at the room left, which is now `granted`, and says so.
      PERFORM credit_plan_grant(p_subscription, p_type, p_allowance, p_new_end, 'plan ' || p_plan || ': allowance');
    ELSIF step = 'R-' AND rolled > 0 THEN
      PERFORM credit_plan_renewal_out(p_subscription, p_type, 'ADJUSTMENT', ids, moved);
    ELSIF step = 'E-' AND rest > 0 THEN
      PERFORM credit_plan_renewal_out(p_subscription, p_type, 'EXPIRATION', ids, expired);
    END IF;
  END LOOP;
END;
$$;
