/**
 * An admin's refund of a settled DEBIT entry, whole or in part: at most what the call cost (its
 * hold less what was released and refunded before). One read to find the debit and what
 * it has left, then one statement that gives the credits back and writes the REFUND entry.
 *
 * The read only makes the answers clear ("has only 2 credits left"); it is not what keeps refunds
 * within their debit. The database does that: the credit_ledger_refund_limit trigger locks the debit
 * row and sums its returns after every statement that writes REFUND or RELEASE entries, so
 * concurrent refunds of one debit are serialised and the one that would go over is refused
 * (SQLSTATE 23514) with nothing changed.
 *
 * A debit whose resolver is still running (it is in pending_charges) is refused: the charge path
 * settles it, possibly by refunding it whole, and an admin refund in between would race with that.
 */
import { sql } from "drizzle-orm";
import { queryRows, type DbOrTx } from "../db/database.js";
import { SQLSTATE, sqlState } from "../db/errors.js";
import { entryFromRow, LEDGER_RETURNING, type LedgerEntryRecord, type LedgerRow } from "./entry.js";

export interface RefundChargeRequest {
  /** The DEBIT entry to refund; must be a well-formed UUID (the caller checks). */
  entryId: string;
  /** Credits to return (> 0); undefined refunds all the debit has left. */
  amount: number | undefined;
  /** The admin who refunds; null for the charge path's own refund of a result it could not deliver. */
  actorId: string | null;
  reason: string;
  requestId: string;
}

export type RefundChargeOutcome =
  | { ok: true; entry: LedgerEntryRecord }
  | { ok: false; reason: "not-found" }
  | { ok: false; reason: "not-a-debit"; kind: string }
  | { ok: false; reason: "pending" }
  /** Asked for more than the debit has left (possibly 0, when it is fully refunded). */
  | { ok: false; reason: "exceeds"; left: number }
  /** The balance would pass the largest value it can hold. */
  | { ok: false; reason: "overflow" };

interface DebitState {
  subscription_id: string;
  credit_type: string;
  kind: string;
  debited: number | string;
  refunded: number | string;
  pending: boolean;
}

/** The entry with this id, how much it took, how much of it was refunded, and whether it is still pending. */
async function readDebit(db: DbOrTx, entryId: string): Promise<DebitState | undefined> {
  const rows = await queryRows<DebitState>(
    db,
    sql`
      select l.subscription_id, l.credit_type, l.kind, -l.amount as debited,
             (select coalesce(sum(r.amount), 0)
                from credit_ledger r
               where r.subscription_id = l.subscription_id and r.refund_of = l.id and r.kind in ('REFUND', 'RELEASE')) as refunded,
             exists (select 1 from pending_charges p
                      where p.subscription_id = l.subscription_id and p.entry_id = l.id) as pending
        from credit_ledger l
       where l.id = ${entryId}::uuid
       limit 1`,
  );
  return rows[0];
}

function creditsLeft(debit: DebitState): number {
  return Number(debit.debited) - Number(debit.refunded);
}

/**
 * Runs the refund statement in a transaction of its own: a savepoint when the caller holds a
 * transaction (a refund with an Idempotency-Key runs in the one that stores the key's answer). The
 * refund-limit trigger's refusal then undoes only the statement, and the read that says what is left
 * still runs; in the caller's transaction it would fail, the transaction being aborted (SQLSTATE 25P02).
 */
function refundStatement<T>(db: DbOrTx, statement: (tx: DbOrTx) => Promise<T>): Promise<T> {
  return db.transaction((tx) => statement(tx));
}

export async function refundDebit(db: DbOrTx, request: RefundChargeRequest): Promise<RefundChargeOutcome> {
  const debit = await readDebit(db, request.entryId);
  if (!debit) return { ok: false, reason: "not-found" };
  if (debit.kind !== "DEBIT") return { ok: false, reason: "not-a-debit", kind: debit.kind };
  if (debit.pending) return { ok: false, reason: "pending" };
  const left = creditsLeft(debit);
  const amount = request.amount ?? left;
  if (amount <= 0 || amount > left) return { ok: false, reason: "exceeds", left };

  try {
    const rows = await refundStatement(db, (tx) => queryRows<LedgerRow>(
      tx,
      sql`
        with credited as (
          update credit_balances
             set balance = balance + ${amount}::int, updated_at = now()
           where subscription_id = ${debit.subscription_id}::uuid and credit_type = ${debit.credit_type}
          returning subscription_id, credit_type, balance
        )
        insert into credit_ledger
          (subscription_id, credit_type, kind, amount, balance_after, operation, actor_id, reason, refund_of, request_id)
        -- The refund must leave room for the balance's held credits to come back (drizzle/0016_balance_room.sql).
        select c.subscription_id, c.credit_type, 'REFUND', ${amount}::int,
               credit_assert_room(c.subscription_id, c.credit_type, c.balance), d.operation, ${request.actorId},
               ${request.reason}, d.id, ${request.requestId}
          from credited c
          join credit_ledger d on d.subscription_id = c.subscription_id and d.id = ${request.entryId}::uuid
        returning ${sql.raw(LEDGER_RETURNING)}`,
    ));
    // The debit and its balance row exist (the read found them, and neither is ever deleted).
    if (rows.length !== 1) throw new Error(`refund of debit ${request.entryId} wrote ${rows.length} entries`);
    return { ok: true, entry: entryFromRow(rows[0]) };
  } catch (err) {
    const state = sqlState(err);
    if (state === SQLSTATE.CHECK_VIOLATION) {
      // The refund-limit trigger: a concurrent refund got there first. Say what is left now.
      const now = await readDebit(db, request.entryId);
      return { ok: false, reason: "exceeds", left: now ? creditsLeft(now) : 0 };
    }
    if (state === SQLSTATE.NUMERIC_OUT_OF_RANGE) return { ok: false, reason: "overflow" };
    throw err;
  }
}
