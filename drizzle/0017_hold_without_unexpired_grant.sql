-- ---------------------------------------------------------------------------------------------
-- credit_hold (0010_charge_functions.sql) once more, with one change: a balance whose grants have
-- ALL expired, before the expiry pass has removed them, counts none of its credits.
--
-- The hold reads each balance's expired remains and its first unexpired grant in one row, which
-- was a CROSS JOIN with that grant: a balance with no unexpired grant at all lost its row, so its
-- expired remains were never read, counted as 0, and the hold spent expired credits (an only grant
-- that had expired a moment before, or last period's plan grant in the seconds before renewal). A
-- LEFT JOIN keeps the row: the remains are counted and the grant is null (no hold fits then).
-- ---------------------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION credit_hold(
  p_group integer[], p_balance integer[], p_amount integer[], p_entry uuid[], p_operation text[], p_estimated integer[],
  p_actor text[], p_actor_is_admin boolean[], p_admin_override boolean[], p_request text[], p_authorize boolean[],
  p_key_subscription uuid[], p_key_type text[], p_instance uuid, p_retry boolean DEFAULT false
) RETURNS TABLE (ord integer, granted boolean, allowed boolean, before integer, balance_after integer, owner_id text, status text)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET enable_hashjoin = off
SET enable_mergejoin = off
SET enable_seqscan = off
AS $$
#variable_conflict use_column
DECLARE
  holds constant integer := coalesce(cardinality(p_group), 0);
  keys constant integer := coalesce(cardinality(p_key_subscription), 0);
  locked integer[] := array_fill(-1, ARRAY[keys]);      -- each balance as locked; -1: no such row
  state integer[];                                     -- what is left of each balance as the walk goes
  expired integer[] := array_fill(0, ARRAY[keys]);     -- credits of expired grants still in each balance
  need integer[] := array_fill(0, ARRAY[keys]);        -- the current group's total per balance
  key_owner text[] := array_fill(NULL::text, ARRAY[keys]);
  key_status text[] := array_fill(NULL::text, ARRAY[keys]);
  hold_allowed boolean[] := array_fill(false, ARRAY[holds]);
  hold_granted boolean[] := array_fill(false, ARRAY[holds]);
  hold_before integer[] := array_fill(NULL::integer, ARRAY[holds]);
  hold_after integer[] := array_fill(NULL::integer, ARRAY[holds]);  -- the real balance after the hold (its DEBIT entry's)
  hold_new boolean[] := array_fill(false, ARRAY[holds]);   -- granted by this statement (not by a first attempt of it)
  hold_done boolean[] := array_fill(false, ARRAY[holds]);  -- its DEBIT entry is in the ledger already (p_retry)
  key_grant uuid[] := array_fill(NULL::uuid, ARRAY[keys]);  -- the one grant a balance's holds all draw from, if one covers them
  key_grant_left integer[] := array_fill(NULL::integer, ARRAY[keys]);
  any_granted boolean := false;
  fits boolean;
  r record;
  i integer := 1;
  j integer;
  k integer;
  first integer;
BEGIN
  IF holds = 0 THEN
    RETURN;
  END IF;

  -- The subscription check reads without locking: the charge path's step 3, folded in.
  FOR r IN SELECT u.i, s.owner_id, s.status
             FROM unnest(p_key_subscription) WITH ORDINALITY AS u(subscription_id, i)
             JOIN billing_subscriptions s ON s.id = u.subscription_id LOOP
    key_owner[r.i] := r.owner_id;
    key_status[r.i] := r.status;
  END LOOP;

  -- Each balance row once, in key order: two batches (on any instance) never deadlock, and no
  -- balance changes under the walk.
  FOR r IN SELECT u.i, b.balance
             FROM credit_balances b
             JOIN unnest(p_key_subscription, p_key_type) WITH ORDINALITY AS u(subscription_id, credit_type, i)
               ON b.subscription_id = u.subscription_id AND b.credit_type = u.credit_type
            ORDER BY b.subscription_id, b.credit_type
              FOR UPDATE OF b LOOP
    locked[r.i] := r.balance;
  END LOOP;
  state := locked;

  -- A retry: which holds a first attempt committed. Read after the locks, so a first attempt still
  -- running has finished by now (it held them first) and is seen if it committed.
  IF p_retry THEN
    FOR r IN SELECT u.i, l.balance_after
               FROM unnest(p_balance, p_entry) WITH ORDINALITY AS u(k, entry_id, i)
               JOIN credit_ledger l ON l.subscription_id = p_key_subscription[u.k] AND l.id = u.entry_id AND l.kind = 'DEBIT' LOOP
      hold_done[r.i] := true;
      hold_after[r.i] := r.balance_after;
    END LOOP;
  END IF;

  -- Each balance's grants, read after the locks (a statement of its own, so it sees every change
  -- committed before them):
  --   - credits of expired grants the expiry pass has not removed yet are in the balance, but no
  --     hold may count on them (0005_grants.sql);
  --   - its first unexpired grant in spending order: usually it covers everything this batch takes
  --     from the balance, and then every hold of it draws from that grant (below).
  FOR r IN SELECT u.i, e.remains, f.id, f.remaining
             FROM unnest(p_key_subscription, p_key_type) WITH ORDINALITY AS u(subscription_id, credit_type, i)
             CROSS JOIN LATERAL (
               SELECT sum(cg.remaining)::integer AS remains FROM credit_grants cg
                WHERE cg.subscription_id = u.subscription_id AND cg.credit_type = u.credit_type
                  AND NOT cg.exhausted AND cg.expires_at <= now()) e
             LEFT JOIN LATERAL (
               SELECT cg.id, cg.remaining FROM credit_grants cg
                WHERE cg.subscription_id = u.subscription_id AND cg.credit_type = u.credit_type AND NOT cg.exhausted
                  AND (cg.expires_at IS NULL OR cg.expires_at > now())
                ORDER BY cg.priority, cg.expires_at, cg.created_at, cg.seq
                LIMIT 1) f ON true LOOP
    IF locked[r.i] >= 0 THEN
      expired[r.i] := coalesce(r.remains, 0);
      key_grant[r.i] := r.id;
      key_grant_left[r.i] := r.remaining;
    END IF;
  END LOOP;

  -- The walk: group by group in arrival order, a group is granted when every hold of it may spend
  -- its subscription and every balance covers the group's total of it, after the earlier groups.
  WHILE i <= holds LOOP
    first := i;
    WHILE i <= holds AND p_group[i] = p_group[first] LOOP
      i := i + 1;
    END LOOP;
    IF hold_done[first] THEN
      -- Committed by the first attempt: a group's holds are written together, so all of them were.
      FOR j IN first .. i - 1 LOOP
        hold_allowed[j] := true;
        hold_granted[j] := true;
      END LOOP;
      CONTINUE;
    END IF;
    fits := true;
    FOR j IN first .. i - 1 LOOP
      k := p_balance[j];
      hold_allowed[j] := coalesce(NOT p_authorize[j]
                                  OR (key_status[k] = 'ACTIVE' AND (key_owner[k] = p_actor[j] OR p_actor_is_admin[j])), false);
      fits := fits AND hold_allowed[j];
      need[k] := need[k] + p_amount[j];
      hold_before[j] := state[k] - expired[k];
    END LOOP;
    FOR j IN first .. i - 1 LOOP
      k := p_balance[j];
      IF state[k] < 0 OR state[k] - expired[k] < need[k] THEN
        fits := false;
      END IF;
    END LOOP;
    FOR j IN first .. i - 1 LOOP
      k := p_balance[j];
      need[k] := 0;
      IF fits THEN
        state[k] := state[k] - p_amount[j];
        hold_after[j] := state[k];
        hold_granted[j] := true;
        hold_new[j] := true;
        any_granted := true;
      END IF;
    END LOOP;
  END LOOP;

  IF any_granted THEN
    -- The rows are locked above, so writing the values computed from them loses no concurrent change.
    UPDATE credit_balances b
       SET balance = u.balance, updated_at = now()
      FROM unnest(p_key_subscription, p_key_type, state, locked) AS u(subscription_id, credit_type, balance, locked_balance)
     WHERE b.subscription_id = u.subscription_id AND b.credit_type = u.credit_type AND u.balance <> u.locked_balance;

    -- The grants the holds draw from (0005_grants.sql). When a balance's first unexpired grant in
    -- spending order covers everything this batch takes from it, every hold of it draws from that
    -- grant, written here in one statement with the entries' draws, as credit_grants_draw would have
    -- drawn them one by one. The other balances' entries go in without draws, and the ledger trigger
    -- draws for them, hold by hold in order, across as many grants as it takes.
    FOR k IN 1 .. keys LOOP
      IF key_grant[k] IS NOT NULL AND (locked[k] = state[k] OR key_grant_left[k] < locked[k] - state[k]) THEN
        key_grant[k] := NULL;
      END IF;
    END LOOP;
    UPDATE credit_grants cg
       SET remaining = cg.remaining - (u.locked_balance - u.balance)
      FROM unnest(p_key_subscription, key_grant, locked, state) AS u(subscription_id, grant_id, locked_balance, balance)
     WHERE u.grant_id IS NOT NULL AND cg.subscription_id = u.subscription_id AND cg.id = u.grant_id;

    INSERT INTO credit_ledger
      (subscription_id, id, credit_type, kind, amount, balance_after, operation, estimated, actor_id, admin_override, request_id, draws)
    SELECT p_key_subscription[h.k], h.entry_id, p_key_type[h.k], 'DEBIT', -h.amount, h.balance_after, h.operation, h.estimated,
           h.actor_id, h.admin_override, h.request_id,
           CASE WHEN key_grant[h.k] IS NOT NULL AND h.amount > 0
                THEN jsonb_build_array(jsonb_build_object('grantId', key_grant[h.k], 'amount', h.amount))
                ELSE '[]'::jsonb END
      FROM unnest(p_balance, p_entry, p_amount, hold_after, p_operation, p_estimated, p_actor, p_admin_override, p_request,
                  hold_new) WITH ORDINALITY
           AS h(k, entry_id, amount, balance_after, operation, estimated, actor_id, admin_override, request_id, granted, i)
     WHERE h.granted
     ORDER BY h.i;

    INSERT INTO pending_charges (subscription_id, entry_id, credit_type, amount, operation, actor_id, request_id, instance_id)
    SELECT p_key_subscription[h.k], h.entry_id, p_key_type[h.k], h.amount, h.operation, h.actor_id, h.request_id, p_instance
      FROM unnest(p_balance, p_entry, p_amount, p_operation, p_actor, p_request, hold_new)
           AS h(k, entry_id, amount, operation, actor_id, request_id, granted)
     WHERE h.granted;
  END IF;

  RETURN QUERY
    SELECT h.i::integer, h.granted, h.allowed, h.before, h.balance_after - expired[h.k], key_owner[h.k], key_status[h.k]
      FROM unnest(p_balance, hold_granted, hold_allowed, hold_before, hold_after) WITH ORDINALITY
           AS h(k, granted, allowed, before, balance_after, i)
     ORDER BY h.i;
END;
$$;
