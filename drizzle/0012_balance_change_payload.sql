-- The live-balance ledger trigger (0004_live_balance.sql) with a cheaper outbox write; what it
-- derives and writes is unchanged: the low-balance crossings (verbatim below), then the outbox
-- payload [[subscription, type, balance, entries, last entry id, kind, amount, seq, created_at,
-- crossing or null], ...], one item per balance the statement changed.
--
-- Why: the trigger runs once per ledger statement, so twice per batch of metered calls (the hold and
-- the settlement), and building the payload was most of its cost. The old query grouped the
-- transition table, joined it to itself for each balance's last entry, and cut the items into
-- chunks with a running sum and a second grouping: five plan nodes with hash tables and a sort,
-- about 0.3 ms of fixed work per statement for a handful of rows. Now one pass picks each balance's
-- last entry (DISTINCT ON, with the balance's count as a window), aggregates the items in order,
-- and the rare payload over ~7 kB (NOTIFY takes at most 8000 bytes; about 40 balances in one
-- statement) is cut into several rows by a loop. Measured in one session inserting statements of 10
-- entries (400 in a row, alternating): the trigger took ~0.4 ms per statement before, ~0.25 ms now.
CREATE OR REPLACE FUNCTION credit_ledger_balance_changes() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  crossings jsonb;
  items text[];
  item text;
  payload text;
BEGIN
  -- Fast path: without any threshold or open alert stored, the only possible crossing is a balance
  -- emptied (BALANCE_DEPLETED), found without probing credit_balance_thresholds for every entry.
  IF NOT EXISTS (SELECT 1 FROM credit_balance_thresholds) THEN
    SELECT jsonb_agg(jsonb_build_object('subscription_id', n.subscription_id, 'credit_type', n.credit_type, 'seq', n.seq,
                                        'entry_id', n.id, 'entry_kind', n.kind, 'before_balance', n.balance_after - n.amount,
                                        'after_balance', n.balance_after, 'low_balance', NULL, 'alerted', false,
                                        'ord', 2, 'alert_kind', 'BALANCE_DEPLETED') ORDER BY n.seq) INTO crossings
      FROM new_entries n
     WHERE n.balance_after = 0 AND n.amount < 0;
  ELSE
  SELECT jsonb_agg(to_jsonb(c) ORDER BY c.seq, c.ord) INTO crossings
    FROM (
      SELECT e.subscription_id, e.credit_type, e.seq, e.id AS entry_id, e.kind AS entry_kind,
             e.balance_after - e.amount AS before_balance, e.balance_after AS after_balance,
             e.low_balance, e.alerted, k.ord, k.alert_kind
        FROM (
          SELECT n.subscription_id, n.credit_type, n.seq, n.id, n.kind, n.amount, n.balance_after,
                 s.low_balance, coalesce(s.alerted, false) AS alerted
            FROM new_entries n
            LEFT JOIN credit_balance_thresholds s
              ON s.subscription_id = n.subscription_id AND s.credit_type = n.credit_type
           WHERE n.amount <> 0
        ) e
        CROSS JOIN LATERAL (VALUES
          (1, 'LOW_BALANCE',
               e.low_balance IS NOT NULL AND e.balance_after - e.amount >= e.low_balance AND e.balance_after < e.low_balance),
          (2, 'BALANCE_DEPLETED', e.balance_after = 0 AND e.balance_after - e.amount > 0),
          (3, 'BALANCE_RECOVERED',
               e.balance_after - e.amount < coalesce(e.low_balance, 1) AND e.balance_after >= coalesce(e.low_balance, 1))
        ) AS k(ord, alert_kind, hit)
       WHERE k.hit
    ) c;
  END IF;

  IF crossings IS NOT NULL THEN
    -- A recovery is announced only after a LOW_BALANCE or BALANCE_DEPLETED: the balance's stored
    -- state, or a fall earlier in this statement. Between two rises a balance always falls past the
    -- same line, so only a balance's first rise in the statement can lack one.
    SELECT jsonb_agg(x ORDER BY (x->>'seq')::bigint, (x->>'ord')::int) INTO crossings
      FROM jsonb_array_elements(crossings) x
     WHERE x->>'alert_kind' <> 'BALANCE_RECOVERED'
        OR (x->>'alerted')::boolean
        OR EXISTS (
             SELECT 1 FROM jsonb_array_elements(crossings) y
              WHERE y->>'subscription_id' = x->>'subscription_id' AND y->>'credit_type' = x->>'credit_type'
                AND y->>'alert_kind' <> 'BALANCE_RECOVERED' AND (y->>'seq')::bigint < (x->>'seq')::bigint);
  END IF;

  IF crossings IS NOT NULL THEN
    INSERT INTO credit_alerts (subscription_id, kind, message, details, announced)
    SELECT c.subscription_id, c.alert_kind,
           CASE c.alert_kind
             WHEN 'LOW_BALANCE' THEN format('The %s balance of subscription %s fell below its low-balance threshold of %s: %s left',
                                            c.credit_type, c.subscription_id, c.low_balance, c.after_balance)
             WHEN 'BALANCE_DEPLETED' THEN format('The %s balance of subscription %s is empty', c.credit_type, c.subscription_id)
             ELSE format('The %s balance of subscription %s is back to %s, at or above %s',
                         c.credit_type, c.subscription_id, c.after_balance, coalesce(c.low_balance, 1))
           END,
           jsonb_build_object('creditType', c.credit_type, 'balance', c.after_balance, 'previousBalance', c.before_balance,
                              'threshold', c.low_balance, 'entryId', c.entry_id, 'entryKind', c.entry_kind),
           false
      FROM jsonb_to_recordset(crossings) AS c(subscription_id uuid, credit_type text, seq bigint, ord int, alert_kind text,
                                              entry_id uuid, entry_kind text, before_balance int, after_balance int, low_balance int)
     ORDER BY c.seq, c.ord;

    -- Each balance's state after its last crossing: open after a fall, closed after a recovery.
    INSERT INTO credit_balance_thresholds AS s (subscription_id, credit_type, alerted)
    SELECT DISTINCT ON (c.subscription_id, c.credit_type) c.subscription_id, c.credit_type, c.alert_kind <> 'BALANCE_RECOVERED'
      FROM jsonb_to_recordset(crossings) AS c(subscription_id uuid, credit_type text, seq bigint, ord int, alert_kind text)
     ORDER BY c.subscription_id, c.credit_type, c.seq DESC, c.ord DESC
    ON CONFLICT (subscription_id, credit_type) DO UPDATE SET alerted = excluded.alerted, updated_at = now();
  END IF;

  -- Each changed balance once: its last entry of the statement and how many entries it had.
  SELECT array_agg(json_build_array(e.subscription_id, e.credit_type, e.balance_after, e.entries, e.id, e.kind, e.amount, e.seq,
                                    e.created_at,
                                    CASE WHEN crossings IS NOT NULL THEN
                                      (SELECT x->>'alert_kind' FROM jsonb_array_elements(crossings) x
                                        WHERE x->>'subscription_id' = e.subscription_id::text AND x->>'credit_type' = e.credit_type
                                        ORDER BY (x->>'seq')::bigint DESC, (x->>'ord')::int DESC LIMIT 1) END)::text
                   ORDER BY e.subscription_id, e.credit_type)
    INTO items
    FROM (SELECT DISTINCT ON (n.subscription_id, n.credit_type)
                 n.subscription_id, n.credit_type, n.balance_after, n.id, n.kind, n.amount, n.seq, n.created_at,
                 count(*) OVER (PARTITION BY n.subscription_id, n.credit_type) AS entries
            FROM new_entries n
           ORDER BY n.subscription_id, n.credit_type, n.seq DESC) e;

  -- A statement that inserted nothing changed nothing.
  IF items IS NULL THEN
    RETURN NULL;
  END IF;

  -- One outbox row, or several when the payload would pass ~7 kB (NOTIFY takes at most 8000 bytes).
  payload := array_to_string(items, ',');
  IF octet_length(payload) <= 7000 THEN
    INSERT INTO credit_balance_change_outbox (payload) VALUES ('[' || payload || ']');
  ELSE
    payload := NULL;
    FOREACH item IN ARRAY items LOOP
      IF payload IS NOT NULL AND octet_length(payload) + 1 + octet_length(item) > 7000 THEN
        INSERT INTO credit_balance_change_outbox (payload) VALUES ('[' || payload || ']');
        payload := NULL;
      END IF;
      payload := CASE WHEN payload IS NULL THEN item ELSE payload || ',' || item END;
    END LOOP;
    INSERT INTO credit_balance_change_outbox (payload) VALUES ('[' || payload || ']');
  END IF;
  RETURN NULL;
END
$$;
