CREATE TABLE "credit_grants" (
	"subscription_id" uuid NOT NULL,
	"id" uuid DEFAULT gen_random_uuid() NOT NULL,
	"seq" bigint GENERATED ALWAYS AS IDENTITY (sequence name "credit_grants_seq_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"credit_type" text NOT NULL,
	"category" text DEFAULT 'PAID' NOT NULL,
	"amount" integer NOT NULL,
	"remaining" integer NOT NULL,
	"exhausted" boolean GENERATED ALWAYS AS (remaining = 0) STORED,
	"priority" integer DEFAULT 50 NOT NULL,
	"effective_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone,
	"reason" text,
	"entry_id" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "credit_grants_pk" PRIMARY KEY("subscription_id","id"),
	CONSTRAINT "credit_grants_category_check" CHECK ("credit_grants"."category" in ('PAID', 'PROMOTIONAL', 'PLAN')),
	CONSTRAINT "credit_grants_priority_range" CHECK ("credit_grants"."priority" between 0 and 100),
	CONSTRAINT "credit_grants_amount_positive" CHECK ("credit_grants"."amount" > 0),
	CONSTRAINT "credit_grants_remaining_nonnegative" CHECK ("credit_grants"."remaining" >= 0)
);
--> statement-breakpoint
CREATE TABLE "plan_periods" (
	"subscription_id" uuid PRIMARY KEY NOT NULL,
	"plan" text NOT NULL,
	"anchor_at" timestamp with time zone NOT NULL,
	"period_number" integer NOT NULL,
	"period_start" timestamp with time zone NOT NULL,
	"period_end" timestamp with time zone NOT NULL
);
--> statement-breakpoint
ALTER TABLE "credit_ledger" DROP CONSTRAINT "credit_ledger_kind_check";--> statement-breakpoint
ALTER TABLE "credit_ledger" DROP CONSTRAINT "credit_ledger_amount_sign";--> statement-breakpoint
ALTER TABLE "credit_ledger" ADD COLUMN "draws" jsonb DEFAULT '[]'::jsonb NOT NULL;--> statement-breakpoint
CREATE INDEX "credit_grants_spend_idx" ON "credit_grants" USING btree ("subscription_id","credit_type","priority","expires_at","created_at","seq") WHERE not "credit_grants"."exhausted";--> statement-breakpoint
CREATE INDEX "credit_grants_expiry_idx" ON "credit_grants" USING btree ("expires_at") WHERE not "credit_grants"."exhausted" and "credit_grants"."expires_at" is not null;--> statement-breakpoint
CREATE INDEX "plan_periods_end_idx" ON "plan_periods" USING btree ("period_end");--> statement-breakpoint
ALTER TABLE "credit_ledger" ADD CONSTRAINT "credit_ledger_kind_check" CHECK ("credit_ledger"."kind" in ('GRANT', 'DEBIT', 'REFUND', 'ADJUSTMENT', 'RELEASE', 'EXPIRATION'));--> statement-breakpoint
ALTER TABLE "credit_ledger" ADD CONSTRAINT "credit_ledger_amount_sign" CHECK (("credit_ledger"."kind" in ('DEBIT', 'EXPIRATION') and "credit_ledger"."amount" <= 0) or ("credit_ledger"."kind" in ('GRANT', 'REFUND', 'RELEASE') and "credit_ledger"."amount" >= 0) or "credit_ledger"."kind" = 'ADJUSTMENT');--> statement-breakpoint
-- ---------------------------------------------------------------------------------------------
-- Grants, drawn and refilled by the database itself (DESIGN.md, "Data"; docs/grants.md).
--
-- Every statement that writes a ledger entry already locks the balance row first (the hold, the
-- release, the refund, the grant, the adjustment, and the expiry and renewal below), so the grants
-- of a balance only ever change under that lock and the functions here need no locking of their own.
-- The ledger's BEFORE INSERT trigger does the bookkeeping for every kind:
--   DEBIT / negative ADJUSTMENT  draw from the balance's unexpired grants in spending order
--   REFUND / RELEASE             give back to the grants the debit drew from, in reverse draw order
--   GRANT / positive ADJUSTMENT  create a grant (PAID, priority 50, no expiry) unless the writer did
--   EXPIRATION                   written with its draws by the expiry functions below
-- and records them in the entry's `draws` ([{grantId, amount}], amounts positive).
-- ---------------------------------------------------------------------------------------------

-- Room on each page for the new version of a grant a draw updates, so it stays a HOT update.
ALTER TABLE "credit_grants" SET (fillfactor = 80);
--> statement-breakpoint
-- Existing balances become one PAID grant each, so every balance equals its grants from the start.
INSERT INTO "credit_grants" ("subscription_id", "credit_type", "category", "amount", "remaining", "reason")
SELECT "subscription_id", "credit_type", 'PAID', "balance", "balance", 'balance before grants existed'
  FROM "credit_balances" WHERE "balance" > 0;
--> statement-breakpoint
-- Returns (refunds and releases) by the debit they return, covering `amount`: the trigger sums what
-- was already given back of a debit before it gives back more.
CREATE INDEX "credit_ledger_returns_idx" ON "credit_ledger" USING btree ("subscription_id","refund_of") INCLUDE ("amount")
  WHERE "credit_ledger"."kind" IN ('REFUND', 'RELEASE');
--> statement-breakpoint
-- Covered by the index above (migration 0003 added it for the refund-limit trigger, which now uses
-- credit_ledger_returns_idx for both kinds): one index fewer to write on every release.
DROP INDEX IF EXISTS "credit_ledger_releases_idx";
--> statement-breakpoint
-- Credits of a balance that have expired but that the expiry pass has not removed yet. The hold
-- statement subtracts them from the balance before it decides what fits, so a hold never counts on
-- them (and the draw below never has to take them). VOLATILE on purpose: each call takes a fresh
-- snapshot, so called after the balance row is locked it sees every change committed before.
CREATE OR REPLACE FUNCTION credit_expired_remains(p_subscription uuid, p_type text) RETURNS integer
LANGUAGE sql VOLATILE AS $$
  SELECT coalesce(sum(remaining), 0)::integer
    FROM credit_grants
   WHERE subscription_id = p_subscription AND credit_type = p_type AND NOT exhausted AND expires_at <= now()
$$;
--> statement-breakpoint
-- Creates a grant and answers the draws of the ledger entry that created it.
CREATE OR REPLACE FUNCTION credit_grants_create(
  p_subscription uuid, p_type text, p_amount integer, p_entry uuid, p_reason text,
  p_category text DEFAULT 'PAID', p_priority integer DEFAULT 50, p_expires_at timestamptz DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  grant_id uuid;
BEGIN
  INSERT INTO credit_grants (subscription_id, credit_type, category, amount, remaining, priority, expires_at, reason, entry_id)
  VALUES (p_subscription, p_type, p_category, p_amount, p_amount, p_priority, p_expires_at, p_reason, p_entry)
  RETURNING id INTO grant_id;
  RETURN jsonb_build_array(jsonb_build_object('grantId', grant_id, 'amount', p_amount));
END;
$$;
--> statement-breakpoint
-- Takes p_amount credits from the balance's grants in spending order: priority, then earliest expiry
-- (never-expiring last), then oldest; expired grants are skipped. A hold must never fail its batch
-- statement: the statement has already checked, with the expired remains subtracted, that the
-- credits are there, so the unexpired grants cover it. Should they not (a grant created by a
-- transaction that committed between that check and this draw, already expired: a window of
-- microseconds), the rest is taken from expired grants rather than failing the batch; an adjustment
-- (p_never_fail false) is refused instead, with the CHECK violation its caller reports.
CREATE OR REPLACE FUNCTION credit_grants_draw(p_subscription uuid, p_type text, p_amount integer, p_never_fail boolean)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  need integer := p_amount;
  g record;
  take integer;
  draws jsonb := '[]'::jsonb;
  first_id uuid;
BEGIN
  -- The usual case in one statement: the first grant in spending order covers the whole amount.
  UPDATE credit_grants SET remaining = remaining - p_amount
   WHERE subscription_id = p_subscription
     AND id = (SELECT id FROM credit_grants
                WHERE subscription_id = p_subscription AND credit_type = p_type AND NOT exhausted
                  AND (expires_at IS NULL OR expires_at > now())
                ORDER BY priority, expires_at, created_at, seq LIMIT 1)
     AND remaining >= p_amount
  RETURNING id INTO first_id;
  IF first_id IS NOT NULL THEN
    RETURN jsonb_build_array(jsonb_build_object('grantId', first_id, 'amount', p_amount));
  END IF;
  FOR g IN SELECT id, remaining FROM credit_grants
            WHERE subscription_id = p_subscription AND credit_type = p_type AND NOT exhausted
              AND (expires_at IS NULL OR expires_at > now())
            ORDER BY priority, expires_at, created_at, seq LOOP
    take := least(need, g.remaining);
    UPDATE credit_grants SET remaining = remaining - take WHERE subscription_id = p_subscription AND id = g.id;
    draws := draws || jsonb_build_object('grantId', g.id, 'amount', take);
    need := need - take;
    EXIT WHEN need = 0;
  END LOOP;
  IF need > 0 AND NOT p_never_fail THEN
    RAISE EXCEPTION 'only % of % credits are left in unexpired grants', p_amount - need, p_amount
      USING ERRCODE = 'check_violation', CONSTRAINT = 'credit_grants_remaining_nonnegative';
  END IF;
  IF need > 0 THEN
    FOR g IN SELECT id, remaining FROM credit_grants
              WHERE subscription_id = p_subscription AND credit_type = p_type AND NOT exhausted
              ORDER BY priority, expires_at, created_at, seq LOOP
      take := least(need, g.remaining);
      UPDATE credit_grants SET remaining = remaining - take WHERE subscription_id = p_subscription AND id = g.id;
      draws := draws || jsonb_build_object('grantId', g.id, 'amount', take);
      need := need - take;
      EXIT WHEN need = 0;
    END LOOP;
  END IF;
  RETURN draws;
END;
$$;
--> statement-breakpoint
-- Gives p_amount credits of a debit back to the grants it drew from, in reverse draw order (the last
-- grant drawn is refilled first), so after a release the grants are as if the debit had been for what
-- it finally cost. What earlier refunds and releases of the debit gave back is skipped first. A grant
-- that has expired gets its credits back marked `expired`: the AFTER trigger below removes them at
-- once with an EXPIRATION entry. Credits of a debit written before grants existed (it has no draws)
-- come back as a new PAID grant.
CREATE OR REPLACE FUNCTION credit_grants_return(
  p_subscription uuid, p_type text, p_debit uuid, p_amount integer, p_entry uuid, p_reason text
) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  debit_draws jsonb;
  skip integer;
  left_over integer := p_amount;
  draw jsonb;
  drawn integer;
  give integer;
  i integer;
  is_expired boolean;
  result jsonb := '[]'::jsonb;
BEGIN
  IF p_debit IS NOT NULL THEN
    SELECT draws INTO debit_draws FROM credit_ledger WHERE subscription_id = p_subscription AND id = p_debit;
    IF jsonb_array_length(debit_draws) = 1 THEN
      -- The usual case: the debit drew from one grant, so whatever was given back before, this goes
      -- back there too (the refund-limit trigger keeps returns within the debit).
      skip := 0;
    ELSE
      SELECT coalesce(sum(amount), 0) INTO skip
        FROM credit_ledger
       WHERE subscription_id = p_subscription AND refund_of = p_debit AND kind IN ('REFUND', 'RELEASE');
    END IF;
    FOR i IN REVERSE coalesce(jsonb_array_length(debit_draws), 0) - 1 .. 0 LOOP
      EXIT WHEN left_over = 0;
      draw := debit_draws -> i;
      drawn := (draw ->> 'amount')::integer;
      IF skip >= drawn THEN
        skip := skip - drawn;
        CONTINUE;
      END IF;
      give := least(left_over, drawn - skip);
      skip := 0;
      UPDATE credit_grants SET remaining = remaining + give
       WHERE subscription_id = p_subscription AND id = (draw ->> 'grantId')::uuid
      RETURNING expires_at IS NOT NULL AND expires_at <= now() INTO is_expired;
      CONTINUE WHEN NOT FOUND;
      result := result || CASE WHEN is_expired
        THEN jsonb_build_object('grantId', draw -> 'grantId', 'amount', give, 'expired', true)
        ELSE jsonb_build_object('grantId', draw -> 'grantId', 'amount', give) END;
      left_over := left_over - give;
    END LOOP;
  END IF;
  IF left_over > 0 THEN
    result := result || credit_grants_create(p_subscription, p_type, left_over, p_entry, coalesce(p_reason, 'returned credits'));
  END IF;
  RETURN result;
END;
$$;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION credit_ledger_apply_grants() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  -- Draws already written by the writer (expiry, renewal, a grant made with its category) stand.
  IF NEW.draws <> '[]'::jsonb OR NEW.amount = 0 THEN
    RETURN NEW;
  END IF;
  IF NEW.kind = 'DEBIT' OR (NEW.kind = 'ADJUSTMENT' AND NEW.amount < 0) THEN
    NEW.draws := credit_grants_draw(NEW.subscription_id, NEW.credit_type, -NEW.amount, NEW.kind = 'DEBIT');
  ELSIF NEW.kind IN ('REFUND', 'RELEASE') THEN
    NEW.draws := credit_grants_return(NEW.subscription_id, NEW.credit_type, NEW.refund_of, NEW.amount, NEW.id, NEW.reason);
  ELSIF NEW.kind IN ('GRANT', 'ADJUSTMENT') THEN
    NEW.draws := credit_grants_create(NEW.subscription_id, NEW.credit_type, NEW.amount, NEW.id, NEW.reason);
  END IF;
  RETURN NEW;
END;
$$;
--> statement-breakpoint
CREATE TRIGGER credit_ledger_apply_grants
  BEFORE INSERT ON credit_ledger
  FOR EACH ROW EXECUTE FUNCTION credit_ledger_apply_grants();
--> statement-breakpoint
-- Credits given back to an expired grant expire at once. This runs AFTER the statement's rows are in
-- (the refund or release statement has written its balance), so changing the balance row here never
-- collides with the statement's own update of it.
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
  RETURN NULL;
END;
$$;
--> statement-breakpoint
CREATE TRIGGER credit_ledger_expire_returned
  AFTER INSERT ON credit_ledger
  FOR EACH ROW WHEN (NEW.kind IN ('REFUND', 'RELEASE') AND NEW.draws @> '[{"expired": true}]'::jsonb)
  EXECUTE FUNCTION credit_ledger_expire_returned();
--> statement-breakpoint
-- Removes what is left of a balance's expired grants, one EXPIRATION entry per grant. The balance row
-- is locked first and every later statement of this function reads afresh, so two instances running
-- it at once expire each grant once: the second finds nothing left. A PLAN grant whose period the
-- renewal has not processed yet is left to it (the renewal rolls part of it over).
CREATE OR REPLACE FUNCTION credit_expire_grants(p_subscription uuid, p_type text) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  g record;
  balance_now integer;
  expired_count integer := 0;
BEGIN
  PERFORM 1 FROM credit_balances WHERE subscription_id = p_subscription AND credit_type = p_type FOR UPDATE;
  FOR g IN SELECT cg.id, cg.remaining FROM credit_grants cg
            WHERE cg.subscription_id = p_subscription AND cg.credit_type = p_type AND NOT cg.exhausted AND cg.expires_at <= now()
              AND NOT (cg.category = 'PLAN' AND EXISTS (
                SELECT 1 FROM plan_periods p WHERE p.subscription_id = p_subscription AND p.period_end <= cg.expires_at))
            ORDER BY cg.expires_at, cg.created_at, cg.seq LOOP
    UPDATE credit_grants SET remaining = 0 WHERE subscription_id = p_subscription AND id = g.id;
    UPDATE credit_balances SET balance = balance - g.remaining, updated_at = now()
     WHERE subscription_id = p_subscription AND credit_type = p_type
    RETURNING balance INTO balance_now;
    INSERT INTO credit_ledger (subscription_id, credit_type, kind, amount, balance_after, reason, draws)
    VALUES (p_subscription, p_type, 'EXPIRATION', -g.remaining, balance_now, 'grant expired',
            jsonb_build_array(jsonb_build_object('grantId', g.id, 'amount', g.remaining)));
    expired_count := expired_count + 1;
  END LOOP;
  RETURN expired_count;
END;
$$;
--> statement-breakpoint
-- A PLAN grant: the balance grows and a GRANT entry names the new grant (locks the balance row).
CREATE OR REPLACE FUNCTION credit_plan_grant(
  p_subscription uuid, p_type text, p_amount integer, p_expires_at timestamptz, p_reason text
) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  entry_id uuid := gen_random_uuid();
  balance_now integer;
BEGIN
  INSERT INTO credit_balances AS b (subscription_id, credit_type, balance) VALUES (p_subscription, p_type, p_amount)
  ON CONFLICT (subscription_id, credit_type) DO UPDATE SET balance = b.balance + excluded.balance, updated_at = now()
  RETURNING balance INTO balance_now;
  INSERT INTO credit_ledger (subscription_id, id, credit_type, kind, amount, balance_after, reason, draws)
  VALUES (p_subscription, entry_id, p_type, 'GRANT', p_amount, balance_now, p_reason,
          credit_grants_create(p_subscription, p_type, p_amount, entry_id, p_reason, 'PLAN', 50, p_expires_at));
END;
$$;
--> statement-breakpoint
-- One plan renewal of one balance at the boundary p_old_end: of the ending period's unused PLAN
-- credits, up to p_rollover_max move into a new PLAN grant (an ADJUSTMENT out of the old grants and a
-- GRANT in), the rest expire (EXPIRATION), and the next period's allowance is granted; both new
-- grants expire at p_new_end. The caller holds the plan period row, so a boundary is renewed once.
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
  IF rolled > 0 THEN
    PERFORM credit_plan_grant(p_subscription, p_type, rolled, p_new_end, 'plan ' || p_plan || ': rollover');
  END IF;
  IF p_allowance > 0 THEN
    PERFORM credit_plan_grant(p_subscription, p_type, p_allowance, p_new_end, 'plan ' || p_plan || ': allowance');
  END IF;
END;
$$;
