/**
 * SQL over idempotency_keys (src/db/schema/idempotency.ts). One row per (actor, key, field path).
 *
 * A claim is a single INSERT … ON CONFLICT statement, so of two simultaneous first calls exactly one
 * inserts and the other finds its row. The conflicting row is taken over only when it has expired,
 * or when it is PENDING, no DEBIT of the request that claimed it stands unrefunded, and either one
 * held since the claim was refunded (its process died and the recovery pass refunded its hold once
 * its instance's lease expired, seconds later), or the instance lease the claim was made under has
 * expired (credit_claim_abandoned, drizzle/0015_lease_bound_claims.sql: the call's holds are taken
 * under that lease only, so it can hold nothing more; this covers a call that died before it held
 * anything), or the claim is older than the settle timeout: running the call again then cannot
 * charge twice. A claim whose charge stands (its outcome was never stored) is never taken over; once
 * its call has settled, its retries are told the result was not kept (claimFinishedUnrecorded).
 *
 * `created_at` is the claim's token: complete and abandon touch the row only while it still holds
 * the claim they made, so a call that outlived its claim cannot overwrite its successor's.
 */
import { randomUUID } from "node:crypto";
import { sql } from "drizzle-orm";
import { queryRows, type DbOrTx } from "../db/database.js";
import { retryOnLostConnection } from "../db/lost-connection-retry.js";
import { LOST_CONNECTION_RETRY_DELAYS_MS } from "../db/retry-delays.js";

export interface KeyScope {
  actorId: string;
  key: string;
  fieldPath: string;
}

export interface StoredKey {
  requestHash: string;
  state: "PENDING" | "DONE";
  /** jsonb, parsed by both drivers: the stored outcome envelope (see database-idempotency-gate.ts). */
  result: unknown;
  charge: unknown;
}

/**
 * Claims the key at `now`; true when this call owns it (new, expired or stale). Sent again when its
 * connection is lost: the claim carries an id chosen here before it is first sent, so a first
 * attempt that committed before its answer was lost is found by it and is still this call's claim,
 * while another call's claim of the same key is not.
 */
export async function claimKey(
  db: DbOrTx,
  scope: KeyScope,
  claim: { requestHash: string; now: Date; expiresAt: Date; staleBefore: Date; requestId?: string; instanceId?: string },
): Promise<boolean> {
  const claimId = randomUUID();
  const rows = await retryOnLostConnection(() => claimStatement(db, scope, { ...claim, claimId }), LOST_CONNECTION_RETRY_DELAYS_MS);
  return rows.length === 1;
}

function claimStatement(
  db: DbOrTx,
  scope: KeyScope,
  claim: { requestHash: string; now: Date; expiresAt: Date; staleBefore: Date; requestId?: string; instanceId?: string; claimId: string },
): Promise<{ claimed: number }[]> {
  return queryRows<{ claimed: number }>(
    db,
    sql`
      insert into idempotency_keys as k
        (actor_id, key, field_path, request_hash, state, created_at, expires_at, request_id, claim_id, instance_id, claimed_at)
      values (${scope.actorId}, ${scope.key}, ${scope.fieldPath}, ${claim.requestHash}, 'PENDING',
              ${claim.now.toISOString()}::timestamptz, ${claim.expiresAt.toISOString()}::timestamptz, ${claim.requestId ?? null},
              ${claim.claimId}::uuid, ${claim.instanceId ?? null}::uuid, now())
      on conflict (actor_id, key, field_path) do update
         set request_hash = excluded.request_hash, state = 'PENDING', result = null, charge = null,
             created_at = excluded.created_at, expires_at = excluded.expires_at, request_id = excluded.request_id,
             claim_id = excluded.claim_id, instance_id = excluded.instance_id, claimed_at = excluded.claimed_at
       where k.expires_at <= ${claim.now.toISOString()}::timestamptz
          -- This very claim, sent again after its answer was lost.
          or (k.state = 'PENDING' and k.claim_id = ${claim.claimId}::uuid)
          -- Its instance's lease expired and none of its holds stands (checked after the holds still
          -- running under that lease have finished).
          or (k.state = 'PENDING' and credit_claim_abandoned(k.instance_id, k.claimed_at, k.request_id))
          or (k.state = 'PENDING'
              and (k.created_at <= ${claim.staleBefore.toISOString()}::timestamptz
                   or exists (select 1 from credit_ledger d
                               where d.request_id = k.request_id and d.kind = 'DEBIT'
                                 -- held by this claim's call, not by an earlier request that
                                 -- carried the same (caller-chosen) request id. (The claim's time
                                 -- is this server's clock: one ahead of the database's defers the
                                 -- takeover to the settle timeout; one behind it lets such an
                                 -- earlier refund count only within the skew.)
                                 and d.created_at >= k.created_at
                                 and exists (select 1 from credit_ledger r
                                              where r.subscription_id = d.subscription_id and r.refund_of = d.id and r.kind = 'REFUND')))
              and (k.request_id is null or not exists (
                    select 1 from credit_ledger d
                     where d.request_id = k.request_id and d.kind = 'DEBIT'
                       and not exists (select 1 from credit_ledger r
                                        where r.subscription_id = d.subscription_id and r.refund_of = d.id and r.kind = 'REFUND'))))
      returning 1 as claimed`,
  );
}

/** The key's row, if any; a read, sent again when its connection is lost. */
export async function readKey(db: DbOrTx, scope: KeyScope): Promise<StoredKey | undefined> {
  const rows = await retryOnLostConnection(() =>
    queryRows<{ request_hash: string; state: "PENDING" | "DONE"; result: unknown; charge: unknown }>(
      db,
      sql`select request_hash, state, result, charge from idempotency_keys
           where actor_id = ${scope.actorId} and key = ${scope.key} and field_path = ${scope.fieldPath}`,
    ),
  );
  if (rows.length === 0) return undefined;
  const row = rows[0];
  return { requestHash: row.request_hash, state: row.state, result: row.result, charge: row.charge };
}

/**
 * True when the PENDING claim's call has finished and was charged, but its outcome was never stored:
 * none of the DEBITs its request made since the claim is still pending, and one stands unrefunded.
 * That happens when the database went away as the call ended (the store and its not-kept fallback
 * both failed) and the settlement was written later, in the background. Its retries must not get
 * CONFLICT until the key expires: the call is not running, and it is not run again either.
 */
export async function claimFinishedUnrecorded(db: DbOrTx, scope: KeyScope): Promise<boolean> {
  const rows = await retryOnLostConnection(() =>
    queryRows<{ pending: boolean | null; standing: boolean | null }>(
      db,
      sql`select bool_or(p.entry_id is not null) as pending,
                 bool_or(p.entry_id is null
                         and not exists (select 1 from credit_ledger r
                                          where r.subscription_id = d.subscription_id and r.refund_of = d.id and r.kind = 'REFUND')) as standing
            from idempotency_keys k
            join credit_ledger d on d.request_id = k.request_id and d.kind = 'DEBIT'
                                and d.created_at >= coalesce(k.claimed_at, k.created_at)
            left join pending_charges p on p.subscription_id = d.subscription_id and p.entry_id = d.id
           where k.actor_id = ${scope.actorId} and k.key = ${scope.key} and k.field_path = ${scope.fieldPath}
             and k.state = 'PENDING'`,
    ),
  );
  return rows[0]?.pending === false && rows[0]?.standing === true;
}

/** Stores the outcome of the claim made at `claimedAt`; false when that claim was lost (taken over after a stall). */
export async function completeKey(
  db: DbOrTx,
  scope: KeyScope,
  claimedAt: Date,
  outcome: { result: unknown; charge: unknown },
): Promise<boolean> {
  const rows = await queryRows<{ done: number }>(
    db,
    sql`update idempotency_keys
           set state = 'DONE', result = ${JSON.stringify(outcome.result)}::jsonb, charge = ${JSON.stringify(outcome.charge)}::jsonb
         where actor_id = ${scope.actorId} and key = ${scope.key} and field_path = ${scope.fieldPath}
           and state = 'PENDING' and created_at = ${claimedAt.toISOString()}::timestamptz
        returning 1 as done`,
  );
  return rows.length === 1;
}

/**
 * Releases the claim made at `claimedAt`, if this call still holds it. Deleting it twice deletes it
 * once, so it is sent again when its connection is lost, for as long as the ledger retries: a lost
 * release would leave the key answering CONFLICT to the caller's retries.
 */
export async function releaseKey(db: DbOrTx, scope: KeyScope, claimedAt: Date): Promise<void> {
  await retryOnLostConnection(
    () =>
      db.execute(
        sql`delete from idempotency_keys
             where actor_id = ${scope.actorId} and key = ${scope.key} and field_path = ${scope.fieldPath}
               and state = 'PENDING' and created_at = ${claimedAt.toISOString()}::timestamptz`,
      ),
    LOST_CONNECTION_RETRY_DELAYS_MS,
  );
}

/** Deletes up to `limit` keys expired at `now`; returns how many went. */
export async function purgeExpiredKeys(db: DbOrTx, now: Date, limit: number): Promise<number> {
  const rows = await queryRows<{ key: string }>(
    db,
    sql`delete from idempotency_keys k
         using (select actor_id, key, field_path from idempotency_keys
                 where expires_at <= ${now.toISOString()}::timestamptz
                 limit ${limit}) expired
         where k.actor_id = expired.actor_id and k.key = expired.key and k.field_path = expired.field_path
        returning k.key`,
  );
  return rows.length;
}

