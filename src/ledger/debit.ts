/**
 * The debit: one SQL statement that takes credits from a balance only if they are there, writes the
 * DEBIT ledger entry with the balance after it, and marks the charge pending until it settles. One
 * statement means one round trip and the shortest possible hold on the balance row's lock
 * (DESIGN.md, "Performance"); it works the same through a transaction-mode pooler and on PGlite.
 */
import { sql } from "drizzle-orm";
import { queryRows, type DbOrTx } from "../db/database.js";

export interface DebitRequest {
  subscriptionId: string;
  creditType: string;
  /** Credits to take; 0 is allowed (an admin override) and still recorded. */
  amount: number;
  operation: string;
  estimated: number;
  actorId: string;
  adminOverride: boolean;
  requestId: string;
}

export type DebitOutcome =
  | { ok: true; entryId: string; balanceAfter: number }
  | { ok: false; reason: "insufficient"; available: number }
  | { ok: false; reason: "no-balance" };

export async function debitCredits(db: DbOrTx, request: DebitRequest): Promise<DebitOutcome> {
  const { subscriptionId, creditType, amount } = request;
  const rows = await queryRows<{ id: string; balance_after: number }>(
    db,
    sql`
      with debited as (
        update credit_balances
           set balance = balance - ${amount}::int, updated_at = now()
         where subscription_id = ${subscriptionId}::uuid and credit_type = ${creditType}
           -- Expired grants' remains are no credits to spend (drizzle/0005_grants.sql).
           and balance - credit_expired_remains(subscription_id, credit_type) >= ${amount}::int
        returning subscription_id, credit_type, balance
      ), entry as (
        insert into credit_ledger
          (subscription_id, credit_type, kind, amount, balance_after, operation, estimated, actor_id, admin_override, request_id)
        select subscription_id, credit_type, 'DEBIT', -${amount}::int, balance, ${request.operation}, ${request.estimated}::int,
               ${request.actorId}, ${request.adminOverride}::boolean, ${request.requestId}
          from debited
        returning id, subscription_id, credit_type, amount, balance_after
      ), pending as (
        insert into pending_charges (subscription_id, entry_id, credit_type, amount, operation, actor_id, request_id)
        select subscription_id, id, credit_type, -amount, ${request.operation}, ${request.actorId}, ${request.requestId}
          from entry
      )
      select id, balance_after from entry`,
  );
  if (rows.length === 1) return { ok: true, entryId: rows[0].id, balanceAfter: Number(rows[0].balance_after) };

  // Refused: read what there is, so the error can say "needs 5, 3 available". Off the hot path.
  const current = await queryRows<{ balance: number }>(
    db,
    sql`select balance - credit_expired_remains(subscription_id, credit_type) as balance from credit_balances where subscription_id = ${subscriptionId}::uuid and credit_type = ${creditType}`,
  );
  if (current.length === 0) return { ok: false, reason: "no-balance" };
  return { ok: false, reason: "insufficient", available: Number(current[0].balance) };
}
