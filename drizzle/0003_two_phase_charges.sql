-- Two-phase charges: a RELEASE entry returns the unused part of a debit's hold (DESIGN.md, "The charge path").
ALTER TABLE "credit_ledger" DROP CONSTRAINT "credit_ledger_kind_check";--> statement-breakpoint
ALTER TABLE "credit_ledger" DROP CONSTRAINT "credit_ledger_amount_sign";--> statement-breakpoint
CREATE INDEX "credit_ledger_releases_idx" ON "credit_ledger" USING btree ("subscription_id","refund_of") INCLUDE ("amount") WHERE "credit_ledger"."kind" = 'RELEASE';--> statement-breakpoint
ALTER TABLE "credit_ledger" ADD CONSTRAINT "credit_ledger_kind_check" CHECK ("credit_ledger"."kind" in ('GRANT', 'DEBIT', 'REFUND', 'ADJUSTMENT', 'RELEASE'));--> statement-breakpoint
ALTER TABLE "credit_ledger" ADD CONSTRAINT "credit_ledger_amount_sign" CHECK (("credit_ledger"."kind" = 'DEBIT' and "credit_ledger"."amount" <= 0) or ("credit_ledger"."kind" in ('GRANT', 'REFUND', 'RELEASE') and "credit_ledger"."amount" >= 0) or "credit_ledger"."kind" = 'ADJUSTMENT');--> statement-breakpoint
-- A REFUND or RELEASE names a DEBIT of the same subscription and type, and together they never
-- return more than that debit took. Locking the debit row serialises concurrent returns of one debit,
-- so the sum read after the lock includes every return committed before.
CREATE OR REPLACE FUNCTION credit_ledger_check_refund() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  debit_kind text;
  debit_type text;
  debited integer;
  returned integer;
BEGIN
  IF NEW.kind NOT IN ('REFUND', 'RELEASE') THEN
    RETURN NEW;
  END IF;
  IF NEW.refund_of IS NULL THEN
    RAISE EXCEPTION 'a % entry must name the debit it returns credits of', NEW.kind USING ERRCODE = 'check_violation';
  END IF;
  SELECT kind, credit_type, -amount INTO debit_kind, debit_type, debited
    FROM credit_ledger
   WHERE subscription_id = NEW.subscription_id AND id = NEW.refund_of
     FOR UPDATE;
  IF NOT FOUND OR debit_kind <> 'DEBIT' OR debit_type <> NEW.credit_type THEN
    RAISE EXCEPTION 'refund_of % is not a DEBIT of this subscription and credit type', NEW.refund_of
      USING ERRCODE = 'check_violation';
  END IF;
  SELECT coalesce(sum(amount), 0) INTO returned
    FROM credit_ledger
   WHERE subscription_id = NEW.subscription_id AND refund_of = NEW.refund_of AND kind IN ('REFUND', 'RELEASE');
  IF returned + NEW.amount > debited THEN
    RAISE EXCEPTION '% of % credits exceeds the % left on debit %', NEW.kind, NEW.amount, debited - returned, NEW.refund_of
      USING ERRCODE = 'check_violation', CONSTRAINT = 'credit_ledger_refund_limit';
  END IF;
  RETURN NEW;
END;
$$;
