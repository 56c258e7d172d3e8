-- ---------------------------------------------------------------------------------------------
-- The hold and the settlement as server-side functions (src/ledger/hold.ts, src/ledger/settle.ts).
--
-- Why functions: every hold and settlement statement used to be sent as text and planned afresh
-- (named prepared statements do not survive a transaction-mode pooler, DESIGN.md "Data"), and
-- planning the hold's recursive CTE cost more than running it: ~3 ms per statement of 5 holds,
-- which made PostgreSQL the limit of the metered path (bench/README.md). PL/pgSQL keeps the plans of
-- the statements inside a function per session, which works through a pooler too (a function call
-- is one ordinary statement). plan_cache_mode = force_generic_plan: the statements take arrays whose
-- sizes change with every batch, and a custom plan per size would be planning again. Hash joins,
-- merge joins and sequential scans are off inside them: a generic plan does not know how few rows
-- the arrays hold, and chose to hash every subscription (a sequential scan of the table) to find the
-- batch's few, and to scan pending_charges (small, but every hold adds a row and every settlement
-- deletes one, so its pages are mostly dead rows) instead of its key; each array element must be
-- found through its index.
--
-- The hold walks its groups in a loop instead of the recursive CTE, so a batch costs in proportion
-- to its holds (the CTE rebuilt the state array of every balance for every group).
-- ---------------------------------------------------------------------------------------------

-- Holds a batch of groups, all of a group or none, in arrival order (src/ledger/hold.ts explains the
-- rules). Hold i is p_*[i]; p_group numbers the groups 1, 2, … with each group's holds contiguous;
-- p_balance[i] is the index of the hold's balance in p_key_subscription / p_key_type, which list each
-- balance once. One row per hold comes back, in order: `before` and `balance_after` are net of the
-- balance's expired remains (what the caller may still spend); `before` is -1 when the balance row
-- does not exist; owner_id and status are what the subscription check saw (null: no subscription).
-- p_retry: the batch was sent before and its answer lost (src/ledger/coalescing-charge-ledger.ts);
-- a group whose DEBIT entries are already in the ledger committed then, and is answered as granted
-- from them instead of being held again.
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
             CROSS JOIN LATERAL (
               SELECT cg.id, cg.remaining FROM credit_grants cg
                WHERE cg.subscription_id = u.subscription_id AND cg.credit_type = u.credit_type AND NOT cg.exhausted
                  AND (cg.expires_at IS NULL OR cg.expires_at > now())
                ORDER BY cg.priority, cg.expires_at, cg.created_at, cg.seq
                LIMIT 1) f LOOP
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
--> statement-breakpoint
-- Settles a batch of holds (src/ledger/settle.ts explains post, release and void). Settlement i is
-- p_*[i]: p_kind is 'REFUND' (void: the whole hold comes back), 'RELEASE' (p_amount of it comes
-- back, at most the hold) or null (post: nothing comes back). A hold is settled only while its
-- pending mark exists, and the mark goes in the same statement, so each is settled exactly once.
-- One row per settled hold comes back: what was returned and the balance after it (null when
-- nothing was returned); a hold that was no longer pending has no row.
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

  RETURN QUERY
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
    SELECT s.i::integer, s.returned, n.balance_after
      FROM unnest(settled, settled_returned) AS s(i, returned)
      LEFT JOIN numbered n ON n.i = s.i;
END;
$$;
--> statement-breakpoint
-- The ledger's row trigger for the grants fires only for entries written without their draws: the
-- hold and the settlement above write their entries' draws themselves in the usual case, so most of
-- their rows no longer run PL/pgSQL per row (each such call cost more than the row's own insert).
DROP TRIGGER credit_ledger_apply_grants ON credit_ledger;
--> statement-breakpoint
CREATE TRIGGER credit_ledger_apply_grants
  BEFORE INSERT ON credit_ledger
  FOR EACH ROW WHEN (NEW.draws = '[]'::jsonb AND NEW.amount <> 0)
  EXECUTE FUNCTION credit_ledger_apply_grants();
--> statement-breakpoint
-- The refund limit (0003): a REFUND or RELEASE names a DEBIT of the same subscription and type, and
-- together they never return more than that debit took. Checked once per statement instead of once
-- per row: a settlement statement writes a batch of RELEASE entries, and two queries for the whole
-- batch cost far less than a PL/pgSQL call and two queries per entry. Locking the debits (in key
-- order, so two statements never deadlock) serialises concurrent returns of one debit: the check
-- runs after the locks, as a statement of its own, so it sees every return committed before them
-- plus this statement's own.
CREATE OR REPLACE FUNCTION credit_ledger_check_returns() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  bad record;
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
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  IF bad.debit_kind IS DISTINCT FROM 'DEBIT' OR bad.debit_type <> bad.credit_type THEN
    RAISE EXCEPTION 'refund_of % is not a DEBIT of this subscription and credit type', bad.refund_of
      USING ERRCODE = 'check_violation';
  END IF;
  RAISE EXCEPTION '% of % credits exceeds the % left on debit %', bad.kind, bad.amount, bad.debited - (bad.returned - bad.amount), bad.refund_of
    USING ERRCODE = 'check_violation', CONSTRAINT = 'credit_ledger_refund_limit';
END;
$$;
--> statement-breakpoint
DROP TRIGGER credit_ledger_refund_limit ON credit_ledger;
--> statement-breakpoint
CREATE TRIGGER credit_ledger_refund_limit
  AFTER INSERT ON credit_ledger
  REFERENCING NEW TABLE AS new_entries
  FOR EACH STATEMENT EXECUTE FUNCTION credit_ledger_check_returns();
--> statement-breakpoint
DROP FUNCTION credit_ledger_check_refund();
