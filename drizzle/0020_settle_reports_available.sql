-- ---------------------------------------------------------------------------------------------
-- credit_settle() reports the balance after a settlement as credits available, as credit_hold()
-- reports the balance after a hold: less what is left of grants that have expired and that the expiry
-- pass has not removed yet (an outside audit: in the seconds after a grant expired, a call that
-- ended with a RELEASE reported `remaining: 12` where the balance read 4 and the next call, settled
-- at its hold, reported 2). The rest of the function is 0016_balance_room.sql's.
-- ---------------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION credit_settle(
  p_subscription uuid[], p_entry uuid[], p_kind text[], p_amount integer[], p_reason text[], p_actor text[], p_request text[]
) RETURNS TABLE (ord integer, returned integer, balance_after integer)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET enable_hashjoin = off
SET enable_mergejoin = off
SET enable_seqscan = off
AS $$
#variable_conflict use_column
DECLARE
  settled integer[];      -- which settlements found their pending mark
  settled_type text[];
  settled_operation text[];
  settled_held integer[];
  settled_returned integer[];
  settled_balance integer[]; -- the balance after each settlement's return (null: nothing returned)
  i integer;
BEGIN
  IF coalesce(cardinality(p_entry), 0) = 0 THEN
    RETURN;
  END IF;

  WITH marks AS (
    DELETE FROM pending_charges p
     USING unnest(p_subscription, p_entry) WITH ORDINALITY AS u(subscription_id, entry_id, i)
     WHERE p.subscription_id = u.subscription_id AND p.entry_id = u.entry_id
    RETURNING u.i, p.credit_type, p.operation, p.amount
  )
  SELECT array_agg(m.i::integer ORDER BY m.i), array_agg(m.credit_type ORDER BY m.i), array_agg(m.operation ORDER BY m.i),
         array_agg(m.amount ORDER BY m.i)
    INTO settled, settled_type, settled_operation, settled_held
    FROM marks m;
  IF settled IS NULL THEN
    RETURN;
  END IF;

  settled_returned := array_fill(0, ARRAY[cardinality(settled)]);
  FOR j IN 1 .. cardinality(settled) LOOP
    i := settled[j];
    settled_returned[j] := CASE p_kind[i] WHEN 'REFUND' THEN settled_held[j]
                                          WHEN 'RELEASE' THEN least(greatest(p_amount[i], 0), settled_held[j])
                                          ELSE 0 END;
  END LOOP;

  -- The balances credited, locked in key order as the hold locks them (a settlement and a hold never
  -- deadlock) before anything of them is read or written: the statement below starts after the locks,
  -- so it reads each balance and its grants as they are now, and no one else can change them.
  PERFORM 1
     FROM credit_balances b
    WHERE (b.subscription_id, b.credit_type) IN (
            SELECT p_subscription[s.i], s.credit_type FROM unnest(settled, settled_type, settled_returned) AS s(i, credit_type, returned)
             WHERE s.returned > 0)
    ORDER BY b.subscription_id, b.credit_type
      FOR UPDATE OF b;

  WITH returns AS (
      SELECT s.i, p_subscription[s.i] AS subscription_id, s.credit_type, s.operation, s.returned, p_kind[s.i] AS kind,
             p_reason[s.i] AS reason, p_actor[s.i] AS actor_id, p_request[s.i] AS request_id, p_entry[s.i] AS entry_id
        FROM unnest(settled, settled_type, settled_operation, settled_returned) AS s(i, credit_type, operation, returned)
       WHERE s.returned > 0
    ), single_draws AS (
      -- A debit that drew from one grant gets its credits back into that grant (credit_grants_return's
      -- usual case, done here for the whole batch in one statement); the others' entries go in
      -- without draws and the ledger trigger gives back across their grants.
      SELECT r.i, (l.draws -> 0 ->> 'grantId')::uuid AS grant_id
        FROM returns r
        JOIN credit_ledger l ON l.subscription_id = r.subscription_id AND l.id = r.entry_id
       WHERE jsonb_array_length(l.draws) = 1
    ), refilled AS (
      UPDATE credit_grants g
         SET remaining = g.remaining + x.total
        FROM (SELECT r.subscription_id, d.grant_id, sum(r.returned)::integer AS total
                FROM returns r JOIN single_draws d ON d.i = r.i
               GROUP BY r.subscription_id, d.grant_id) x
       WHERE g.subscription_id = x.subscription_id AND g.id = x.grant_id
      -- Credits given back to an expired grant are marked so: the ledger's AFTER trigger expires them.
      RETURNING g.id, g.expires_at IS NOT NULL AND g.expires_at <= now() AS expired
    ), totals AS (
      SELECT r.subscription_id, r.credit_type, sum(r.returned)::integer AS total FROM returns r GROUP BY 1, 2
    ), balances AS MATERIALIZED (
      SELECT b.subscription_id, b.credit_type, b.balance
        FROM credit_balances b
        JOIN totals t ON t.subscription_id = b.subscription_id AND t.credit_type = b.credit_type
    ), credited AS (
      UPDATE credit_balances b
         SET balance = l.balance + t.total, updated_at = now()
        FROM balances l
        JOIN totals t ON t.subscription_id = l.subscription_id AND t.credit_type = l.credit_type
       WHERE b.subscription_id = l.subscription_id AND b.credit_type = l.credit_type
    ), numbered AS (
      SELECT r.*, (l.balance + sum(r.returned) OVER (PARTITION BY r.subscription_id, r.credit_type ORDER BY r.i))::integer AS balance_after
        FROM returns r
        JOIN balances l ON l.subscription_id = r.subscription_id AND l.credit_type = r.credit_type
    ), entries AS (
      INSERT INTO credit_ledger
        (subscription_id, credit_type, kind, amount, balance_after, operation, actor_id, reason, refund_of, request_id, draws)
      SELECT n.subscription_id, n.credit_type, n.kind, n.returned, n.balance_after, n.operation, n.actor_id, n.reason, n.entry_id,
             n.request_id,
             CASE WHEN f.id IS NULL THEN '[]'::jsonb
                  WHEN f.expired THEN jsonb_build_array(jsonb_build_object('grantId', f.id, 'amount', n.returned, 'expired', true))
                  ELSE jsonb_build_array(jsonb_build_object('grantId', f.id, 'amount', n.returned)) END
        FROM numbered n
        LEFT JOIN single_draws d ON d.i = n.i
        LEFT JOIN refilled f ON f.id = d.grant_id
       ORDER BY n.i
    )
  SELECT array_agg(n.balance_after ORDER BY s.i)
    INTO settled_balance
    FROM unnest(settled, settled_returned) AS s(i, returned)
    LEFT JOIN numbered n ON n.i = s.i;

  -- Credits given back to a grant that has expired meanwhile expired at once, after the statement
  -- above wrote its entries (credit_ledger_expire_returned, which raises the flag): the balance a
  -- caller is told is then the balance after that EXPIRATION, read under the locks taken above.
  IF current_setting('credits.returned_expired', true) = 'on' THEN
    PERFORM set_config('credits.returned_expired', '', true);
    SELECT array_agg(CASE WHEN s.balance_after IS NULL THEN NULL ELSE b.balance END ORDER BY s.k)
      INTO settled_balance
      FROM unnest(settled, settled_type, settled_balance) WITH ORDINALITY AS s(i, credit_type, balance_after, k)
      LEFT JOIN credit_balances b ON b.subscription_id = p_subscription[s.i] AND b.credit_type = s.credit_type;
  END IF;

  -- Reported as credits available, as the hold reports its own: what is left of grants that have
  -- expired (removed by the expiry pass within RECOVERY_INTERVAL, and spendable by no hold meanwhile)
  -- is not counted. Read under the locks taken above; a settlement that returned nothing reports none.
  RETURN QUERY
    SELECT s.i::integer, s.returned, (s.balance_after - coalesce(x.expired, 0))::integer
      FROM unnest(settled, settled_type, settled_returned, settled_balance) AS s(i, credit_type, returned, balance_after)
      LEFT JOIN LATERAL (
        SELECT sum(g.remaining) AS expired
          FROM credit_grants g
         WHERE s.balance_after IS NOT NULL
           AND g.subscription_id = p_subscription[s.i] AND g.credit_type = s.credit_type
           AND NOT g.exhausted AND g.expires_at <= now()) x ON true;
END;
$$;
