-- ---------------------------------------------------------------------------------------------
-- Room for held credits; the balance a settlement reports after an expiry; previews that do not
-- count expired credits.
--
-- 1. A balance and the credits its open holds took from it come back together when the holds end
--    (a RELEASE or a REFUND returns them), so what a grant, a positive adjustment or an admin refund
--    may add is bounded by the largest balance less the balance and the held credits. Before, a
--    grant during a hold could fill the balance to 2147483647 and the hold's release then failed
--    (integer out of range) at every retry, leaving the hold open. credit_assert_room() is called by
--    those statements after they have locked the balance row (src/ledger/change-balance.ts,
--    src/grants/grant-credits.ts, src/ledger/refund-charge.ts); a plan's grants, which no one is
--    there to refuse, are capped instead (credit_plan_grant).
-- 2. credit_settle() reports the balance after the EXPIRATION that follows a return to an expired
--    grant (`remaining` in extensions.credits is the balance after the request's last change).
-- ---------------------------------------------------------------------------------------------
-- Credits held by a balance's open holds (their pending marks). VOLATILE: called after the balance
-- row is locked, it reads with a fresh snapshot, so it sees every hold committed before the lock.
CREATE OR REPLACE FUNCTION credit_held(p_subscription uuid, p_type text) RETURNS bigint
LANGUAGE sql VOLATILE AS $$
  SELECT coalesce(sum(amount), 0)::bigint FROM pending_charges WHERE subscription_id = p_subscription AND credit_type = p_type
$$;
--> statement-breakpoint
-- Returns p_balance (the balance row's new value, locked by the caller) when it and the balance's held
-- credits fit in the largest balance; raises numeric_value_out_of_range otherwise, as an overflowing
-- balance itself would, so callers handle both the same way.
CREATE OR REPLACE FUNCTION credit_assert_room(p_subscription uuid, p_type text, p_balance integer) RETURNS integer
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  held bigint := credit_held(p_subscription, p_type);
BEGIN
  IF p_balance::bigint + held > 2147483647 THEN
    RAISE EXCEPTION 'a balance of % with % credits held would pass the largest balance, 2147483647', p_balance, held
      USING ERRCODE = 'numeric_value_out_of_range';
  END IF;
  RETURN p_balance;
END;
$$;
--> statement-breakpoint
-- A PLAN grant: the balance grows and a GRANT entry names the new grant (locks the balance row).
-- Capped at the room the balance has left (its held credits counted), the cap said in the entry's
-- reason; nothing is granted when there is no room. A renewal has no caller to refuse, and one
-- subscription's full balance must not stop the renewals and expiries of the others.
CREATE OR REPLACE FUNCTION credit_plan_grant(
  p_subscription uuid, p_type text, p_amount integer, p_expires_at timestamptz, p_reason text
) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  entry_id uuid := gen_random_uuid();
  balance_now integer;
  room bigint;
  granted integer;
  reason text := p_reason;
BEGIN
  INSERT INTO credit_balances (subscription_id, credit_type, balance) VALUES (p_subscription, p_type, 0)
  ON CONFLICT (subscription_id, credit_type) DO NOTHING;
  SELECT balance INTO balance_now FROM credit_balances
   WHERE subscription_id = p_subscription AND credit_type = p_type FOR UPDATE;
  room := 2147483647 - balance_now - credit_held(p_subscription, p_type);
  granted := least(p_amount::bigint, greatest(room, 0))::integer;
  IF granted <= 0 THEN
    RETURN;
  END IF;
  IF granted < p_amount THEN
    reason := p_reason || ' (' || granted || ' of ' || p_amount || ': capped at the largest balance)';
  END IF;
  UPDATE credit_balances SET balance = balance + granted, updated_at = now()
   WHERE subscription_id = p_subscription AND credit_type = p_type
  RETURNING balance INTO balance_now;
  INSERT INTO credit_ledger (subscription_id, id, credit_type, kind, amount, balance_after, reason, draws)
  VALUES (p_subscription, entry_id, p_type, 'GRANT', granted, balance_now, reason,
          credit_grants_create(p_subscription, p_type, granted, entry_id, reason, 'PLAN', 50, p_expires_at));
END;
$$;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION credit_ledger_expire_returned() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  draw jsonb;
  total integer := 0;
  expired jsonb := '[]'::jsonb;
  balance_now integer;
BEGIN
  FOR draw IN SELECT value FROM jsonb_array_elements(NEW.draws) WHERE value ? 'expired' LOOP
    UPDATE credit_grants SET remaining = remaining - (draw ->> 'amount')::integer
     WHERE subscription_id = NEW.subscription_id AND id = (draw ->> 'grantId')::uuid;
    expired := expired || jsonb_build_object('grantId', draw -> 'grantId', 'amount', (draw ->> 'amount')::integer);
    total := total + (draw ->> 'amount')::integer;
  END LOOP;
  UPDATE credit_balances SET balance = balance - total, updated_at = now()
   WHERE subscription_id = NEW.subscription_id AND credit_type = NEW.credit_type
  RETURNING balance INTO balance_now;
  INSERT INTO credit_ledger (subscription_id, credit_type, kind, amount, balance_after, operation, actor_id, reason, request_id, draws)
  VALUES (NEW.subscription_id, NEW.credit_type, 'EXPIRATION', -total, balance_now, NEW.operation, NEW.actor_id,
          'credits returned to an expired grant', NEW.request_id, expired);
  -- Tells credit_settle, which wrote the return, that the balance changed again after its entries.
  PERFORM set_config('credits.returned_expired', 'on', true);
  RETURN NULL;
END;
$$;
--> statement-breakpoint
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

  RETURN QUERY
    SELECT s.i::integer, s.returned, s.balance_after
      FROM unnest(settled, settled_returned, settled_balance) AS s(i, returned, balance_after);
END;
$$;

--> statement-breakpoint
-- 3. creditPreview answers `sufficient` as the hold would: credits of grants that have expired but that
--    the expiry pass has not removed yet (at most RECOVERY_INTERVAL) are not available, so the read
--    adds a third list, [[subscription_id, credit_type, expired], …] (null when, as nearly always,
--    there is none), from the partial index of unexhausted expiring grants.
CREATE OR REPLACE FUNCTION credit_preview_snapshots(p_ids uuid[]) RETURNS json
LANGUAGE plpgsql STABLE AS $$
DECLARE
  snapshots json;
BEGIN
  SELECT json_build_array(
           (SELECT json_agg(json_build_array(s.id, s.owner_id, s.plan, s.status, s.status_reason, s.created_at, s.updated_at))
              FROM unnest(p_ids) AS wanted(id)
              JOIN billing_subscriptions s ON s.id = wanted.id),
           (SELECT json_agg(json_build_array(b.subscription_id, b.credit_type, b.balance, b.updated_at) ORDER BY b.credit_type)
              FROM credit_balances b
             WHERE b.subscription_id = ANY (p_ids)),
           (SELECT json_agg(json_build_array(x.subscription_id, x.credit_type, x.expired))
              FROM (SELECT g.subscription_id, g.credit_type, sum(g.remaining)::integer AS expired
                      FROM credit_grants g
                     WHERE g.subscription_id = ANY (p_ids) AND NOT g.exhausted AND g.expires_at <= now()
                     GROUP BY g.subscription_id, g.credit_type) x))
    INTO snapshots;
  RETURN snapshots;
END;
$$;
