/**
 * Many debits in one SQL statement: the coalescing charge ledger's only way to take credits.
 *
 * For every (subscription, credit type) the batch touches, the balance row is locked once (all rows
 * in key order, so two batches can never deadlock, on one instance or many) and the requests of that
 * balance are walked in arrival order: each is granted if the subscription lets its caller spend and
 * what is left covers it, and refused otherwise, so a later, smaller request can still fit where an
 * earlier, larger one did not (exactly what running them one by one would do). The balance is then
 * written once, with one DEBIT ledger entry and one pending mark per granted request. One statement
 * means one round trip and one commit for the whole batch, and the row lock is held only for it
 * (DESIGN.md, "Performance").
 *
 * Authorization can be folded in: a request with `authorize` is granted only when its subscription
 * exists, is ACTIVE and its actor owns it or is an admin; otherwise the outcome carries what the
 * statement saw, so the caller raises the same errors in the same order as the charge path does.
 */
import { sql } from "drizzle-orm";
import { queryRows, type DbOrTx } from "../db/database.js";

export interface BatchDebitRequest {
  subscriptionId: string;
  creditType: string;
  /** Credits to take; 0 is allowed (an admin override) and still recorded. */
  amount: number;
  /** Chosen by the caller (a random UUID), so each request finds its entry in the answer. */
  entryId: string;
  operation: string;
  estimated: number;
  actorId: string;
  adminOverride: boolean;
  requestId: string;
  /** Check, in the statement, that the subscription exists, is ACTIVE and the actor may spend it. */
  authorize: boolean;
  /** Only read when `authorize`: an admin may spend any subscription's credits. */
  actorIsAdmin: boolean;
}

export type BatchDebitOutcome =
  | { ok: true; entryId: string; balanceAfter: number }
  | { ok: false; reason: "insufficient"; available: number }
  | { ok: false; reason: "no-balance" }
  /** Only for requests with `authorize`: `subscription` is what the statement saw (undefined: it does not exist). */
  | { ok: false; reason: "unauthorized"; subscription: { ownerId: string; status: string } | undefined };

interface OutcomeRow {
  ord: number | string;
  granted: boolean;
  remaining: number | null;
  has_balance: boolean;
  allowed: boolean;
  owner_id: string | null;
  status: string | null;
}

/** One request as the statement reads it (json_to_recordset): `n` is its place in its balance's queue. */
interface RequestRecord {
  ord: number;
  n: number;
  subscription_id: string;
  credit_type: string;
  amount: number;
  entry_id: string;
  operation: string;
  estimated: number;
  actor_id: string;
  actor_is_admin: boolean;
  admin_override: boolean;
  request_id: string;
  authorize: boolean;
}

export async function debitBatch(db: DbOrTx, requests: readonly BatchDebitRequest[]): Promise<BatchDebitOutcome[]> {
  if (requests.length === 0) return [];
  // The requests travel as one JSON parameter (cheaper to build than a dozen arrays), numbered
  // within their balance here, so the statement plans no window function; the balances to lock
  // travel as two arrays.
  const queueLength = new Map<string, number>();
  const keys: { subscriptionId: string; creditType: string }[] = [];
  const records: RequestRecord[] = requests.map((r, i) => {
    const key = `${r.subscriptionId}\u0000${r.creditType}`;
    const n = (queueLength.get(key) ?? 0) + 1;
    queueLength.set(key, n);
    if (n === 1) keys.push({ subscriptionId: r.subscriptionId, creditType: r.creditType });
    return {
      ord: i + 1,
      n,
      subscription_id: r.subscriptionId,
      credit_type: r.creditType,
      amount: r.amount,
      entry_id: r.entryId,
      operation: r.operation,
      estimated: r.estimated,
      actor_id: r.actorId,
      actor_is_admin: r.actorIsAdmin,
      admin_override: r.adminOverride,
      request_id: r.requestId,
      authorize: r.authorize,
    };
  });
  const rows = await queryRows<OutcomeRow>(
    db,
    sql`
      with recursive req as (
        select * from json_to_recordset(${JSON.stringify(records)}::json) as r(
          ord int, n int, subscription_id uuid, credit_type text, amount int, entry_id uuid, operation text, estimated int,
          actor_id text, actor_is_admin boolean, admin_override boolean, request_id text, authorize boolean)
      ), checked as (
        select req.*, s.owner_id, s.status,
               coalesce(not req.authorize or (s.status = 'ACTIVE' and (s.owner_id = req.actor_id or req.actor_is_admin)), false) as allowed
          from req left join billing_subscriptions s on s.id = req.subscription_id
      ), locked as (
        select b.subscription_id, b.credit_type, b.balance
          from credit_balances b
          join unnest(${sql.param(keys.map((k) => k.subscriptionId))}::uuid[], ${sql.param(keys.map((k) => k.creditType))}::text[])
               as k(subscription_id, credit_type)
            on b.subscription_id = k.subscription_id and b.credit_type = k.credit_type
         order by b.subscription_id, b.credit_type
           for update of b
      ), walk (subscription_id, credit_type, n, remaining, granted, expired) as (
        -- expired: credits of expired grants the expiry pass has not removed yet; they are in the
        -- balance but no hold may count on them (drizzle/0005_grants.sql). Read here, once the row is
        -- locked, so it sees every change committed before the lock.
        select subscription_id, credit_type, 0, balance, false, credit_expired_remains(subscription_id, credit_type) from locked
        union all
        select w.subscription_id, w.credit_type, c.n,
               case when c.allowed and w.remaining - w.expired >= c.amount then w.remaining - c.amount else w.remaining end,
               c.allowed and w.remaining - w.expired >= c.amount, w.expired
          from walk w
          join checked c on c.subscription_id = w.subscription_id and c.credit_type = w.credit_type and c.n = w.n + 1
      ), debited as (
        -- What is left only ever shrinks along the walk, so its minimum is the balance after the batch.
        -- The rows are locked above, so writing the value computed from them loses no concurrent change.
        update credit_balances b
           set balance = f.remaining, updated_at = now()
          from (select subscription_id, credit_type, min(remaining) as remaining
                  from walk group by subscription_id, credit_type having bool_or(granted)) f
         where b.subscription_id = f.subscription_id and b.credit_type = f.credit_type
      ), granted as (
        select c.*, w.remaining as balance_after
          from walk w
          join checked c on c.subscription_id = w.subscription_id and c.credit_type = w.credit_type and c.n = w.n
         where w.granted
      ), entries as (
        insert into credit_ledger
          (subscription_id, id, credit_type, kind, amount, balance_after, operation, estimated, actor_id, admin_override, request_id)
        select subscription_id, entry_id, credit_type, 'DEBIT', -amount, balance_after, operation, estimated, actor_id,
               admin_override, request_id
          from granted
         order by ord
      ), pending as (
        insert into pending_charges (subscription_id, entry_id, credit_type, amount, operation, actor_id, request_id)
        select subscription_id, entry_id, credit_type, amount, operation, actor_id, request_id from granted
      )
      select c.ord, coalesce(w.granted, false) as granted, w.remaining - w.expired as remaining, w.n is not null as has_balance, c.allowed, c.owner_id, c.status
        from checked c
        left join walk w on w.subscription_id = c.subscription_id and w.credit_type = c.credit_type and w.n = c.n
       order by c.ord`,
  );

  const outcomes: BatchDebitOutcome[] = new Array(requests.length);
  for (const row of rows) {
    const i = Number(row.ord) - 1;
    const request = requests[i];
    if (!row.allowed) {
      outcomes[i] = {
        ok: false,
        reason: "unauthorized",
        subscription: row.owner_id === null ? undefined : { ownerId: row.owner_id, status: row.status ?? "" },
      };
    } else if (!row.has_balance) {
      outcomes[i] = { ok: false, reason: "no-balance" };
    } else if (row.granted) {
      outcomes[i] = { ok: true, entryId: request.entryId, balanceAfter: Number(row.remaining) };
    } else {
      outcomes[i] = { ok: false, reason: "insufficient", available: Number(row.remaining) };
    }
  }
  return outcomes;
}
