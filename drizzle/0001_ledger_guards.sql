-- The ledger is append-only: UPDATE, DELETE and TRUNCATE are refused by the database itself.
CREATE OR REPLACE FUNCTION credit_ledger_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'credit_ledger is append-only: % is not allowed', TG_OP
    USING ERRCODE = 'raise_exception', HINT = 'write a REFUND or ADJUSTMENT entry instead';
END;
$$;
--> statement-breakpoint
CREATE TRIGGER credit_ledger_no_update_delete
  BEFORE UPDATE OR DELETE ON credit_ledger
  FOR EACH ROW EXECUTE FUNCTION credit_ledger_refuse_change();
--> statement-breakpoint
CREATE TRIGGER credit_ledger_no_truncate
  BEFORE TRUNCATE ON credit_ledger
  FOR EACH STATEMENT EXECUTE FUNCTION credit_ledger_refuse_change();
--> statement-breakpoint
-- A refund names a DEBIT of the same subscription and type and never returns more than that debit
-- has left. Locking the debit row serialises concurrent refunds of one debit, so the sum read
-- after the lock includes every refund committed before.
CREATE OR REPLACE FUNCTION credit_ledger_check_refund() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  debit_kind text;
  debit_type text;
  debited integer;
  refunded integer;
BEGIN
  IF NEW.kind <> 'REFUND' THEN
    RETURN NEW;
  END IF;
  IF NEW.refund_of IS NULL THEN
    RAISE EXCEPTION 'a REFUND entry must name the debit it refunds' USING ERRCODE = 'check_violation';
  END IF;
  SELECT kind, credit_type, -amount INTO debit_kind, debit_type, debited
    FROM credit_ledger
   WHERE subscription_id = NEW.subscription_id AND id = NEW.refund_of
     FOR UPDATE;
  IF NOT FOUND OR debit_kind <> 'DEBIT' OR debit_type <> NEW.credit_type THEN
    RAISE EXCEPTION 'refund_of % is not a DEBIT of this subscription and credit type', NEW.refund_of
      USING ERRCODE = 'check_violation';
  END IF;
  SELECT coalesce(sum(amount), 0) INTO refunded
    FROM credit_ledger
   WHERE subscription_id = NEW.subscription_id AND refund_of = NEW.refund_of AND kind = 'REFUND';
  IF refunded + NEW.amount > debited THEN
    RAISE EXCEPTION 'refund of % credits exceeds the % left on debit %', NEW.amount, debited - refunded, NEW.refund_of
      USING ERRCODE = 'check_violation', CONSTRAINT = 'credit_ledger_refund_limit';
  END IF;
  RETURN NEW;
END;
$$;
--> statement-breakpoint
CREATE TRIGGER credit_ledger_refund_limit
  BEFORE INSERT ON credit_ledger
  FOR EACH ROW EXECUTE FUNCTION credit_ledger_check_refund();
