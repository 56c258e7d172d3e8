CREATE TABLE "credit_balance_thresholds" (
	"subscription_id" uuid NOT NULL,
	"credit_type" text NOT NULL,
	"low_balance" integer,
	"alerted" boolean DEFAULT false NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "credit_balance_thresholds_pk" PRIMARY KEY("subscription_id","credit_type"),
	CONSTRAINT "credit_balance_thresholds_low_balance_positive" CHECK ("credit_balance_thresholds"."low_balance" is null or "credit_balance_thresholds"."low_balance" > 0)
);
--> statement-breakpoint
ALTER TABLE "credit_alerts" DROP CONSTRAINT "credit_alerts_kind_check";--> statement-breakpoint
ALTER TABLE "credit_alerts" ADD COLUMN "announced" boolean DEFAULT true NOT NULL;--> statement-breakpoint
CREATE INDEX "credit_alerts_unannounced_idx" ON "credit_alerts" USING btree ("seq") WHERE not "credit_alerts"."announced";--> statement-breakpoint
ALTER TABLE "credit_alerts" ADD CONSTRAINT "credit_alerts_kind_check" CHECK ("credit_alerts"."kind" in ('USAGE_SPIKE', 'ESTIMATE_MISMATCH', 'FAILED_TRANSACTION', 'LOW_BALANCE', 'BALANCE_DEPLETED', 'BALANCE_RECOVERED'));--> statement-breakpoint
-- Live balance (DESIGN.md, "Live balance" and "Observability"): after every statement that inserts
-- ledger entries, one trigger run
--   1. derives the low-balance crossings from each entry's balance_after and amount (the balance
--      before it is balance_after - amount), stores them as credit_alerts (announced = false, so one
--      instance claims each to log and post it) and keeps credit_balance_thresholds.alerted;
--   2. writes ONE outbox row for the statement (more only when its payload would pass ~7 kB; NOTIFY's
--      limit is 8000 bytes) listing each changed balance:
--      [subscription, type, balance, entries, last entry id, last entry kind, last entry amount,
--       last entry seq, last entry created_at, crossing or null].
-- Each crossing is derived once, by the statement that made it, under the balance row's lock, so it
-- is stored once however many instances or concurrent debits.
--
-- Why an outbox and not pg_notify here: PostgreSQL serializes the commits of all transactions that
-- NOTIFY (a database-wide lock from pre-commit to the end of the commit, WAL flush included), so a
-- NOTIFY in every hold statement cost 25-60% of the debit rate (bench/trigger-cost.ts: 0.41 at 8
-- concurrent batches of 10, 0.80 at 3 of 20), while this insert into an UNLOGGED table costs nothing
-- measurable (1.05). Every instance's relay (src/live/notification-relay.ts) moves outbox rows to
-- NOTIFY on 'credit_balance_changes' every 25 ms, in one transaction of its own; SKIP LOCKED hands
-- each row to one relay. Rows become visible only when their statement commits, so listeners still
-- hear only committed changes, and everything runs through a transaction-mode pooler.
CREATE UNLOGGED TABLE credit_balance_change_outbox (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  payload text NOT NULL
);
--> statement-breakpoint
CREATE FUNCTION credit_ledger_balance_changes() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  crossings jsonb;
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

  INSERT INTO credit_balance_change_outbox (payload)
  SELECT '[' || string_agg(item, ',') || ']'
    FROM (
      SELECT item, sum(octet_length(item) + 1) OVER (ORDER BY subscription_id, credit_type) / 7000 AS chunk
        FROM (
          SELECT l.subscription_id, l.credit_type,
                 json_build_array(l.subscription_id, l.credit_type, e.balance_after, l.entries, e.id, e.kind, e.amount, e.seq,
                                  e.created_at,
                                  CASE WHEN crossings IS NOT NULL THEN
                                    (SELECT x->>'alert_kind' FROM jsonb_array_elements(crossings) x
                                      WHERE x->>'subscription_id' = l.subscription_id::text AND x->>'credit_type' = l.credit_type
                                      ORDER BY (x->>'seq')::bigint DESC, (x->>'ord')::int DESC LIMIT 1) END)::text AS item
            FROM (SELECT subscription_id, credit_type, count(*) AS entries, max(seq) AS last_seq
                    FROM new_entries GROUP BY subscription_id, credit_type) l
            JOIN new_entries e ON e.seq = l.last_seq
        ) items
    ) chunks
   GROUP BY chunk;
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER credit_ledger_balance_changes AFTER INSERT ON credit_ledger
  REFERENCING NEW TABLE AS new_entries FOR EACH STATEMENT EXECUTE FUNCTION credit_ledger_balance_changes();
