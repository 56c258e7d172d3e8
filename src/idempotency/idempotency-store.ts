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
 *
 * A key is kept IDEMPOTENCY_TTL from when its outcome is stored (completeKey). While PENDING, its call
 * may still run, for up to the settle timeout: a claim expires no sooner than that (claimInstants).
 * An outside audit: with an IDEMPOTENCY_TTL shorter than a call, the claim expired mid-call, a retry
 * took the key over and ran the call again, charged twice; and a stored outcome lived the TTL less
 * the call's own duration.
 *
 * Time is the database's: a claim is stamped now(), expires by now() and finds a claim stale by
 * now(), and the recovery pass purges keys expired by now(), so instances whose clocks disagree (one
 * ahead, one behind, an NTP step) judge every key alike. Only a test that injects a clock gives the
 * instants itself (ClaimTiming), to skip time.
 */
import { randomUUID } from "node:crypto";
import { sql, type SQL } from "drizzle-orm";
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
 * When a claim is made, how long it is kept and when a PENDING claim is stale. In production the
 * durations, applied to the database's now() by the claim statement itself; with an injected clock
 * (tests), the instants that clock gives.
 */
export type ClaimTiming =
  | { ttlMs: number; staleAfterMs: number }
  | { now: Date; expiresAt: Date; staleBefore: Date };

/** How long a completed key is kept (IDEMPOTENCY_TTL from now()), or, with an injected clock, until when. */
export type KeyRetention = { ttlMs: number } | { expiresAt: Date };

/**
 * The claim a call holds: its row's created_at as PostgreSQL wrote it (text keeps the microseconds
 * of now(), which a JS Date drops), for completeKey and releaseKey to find the row while it is theirs.
 */
export type ClaimToken = string;

/**
 * Claims the key; its token when this call owns it (new, expired or stale), undefined when another
 * claim holds it. Sent again when its connection is lost: the claim carries an id chosen here before
 * it is first sent, so a first attempt that committed before its answer was lost is found by it and
 * is still this call's claim, while another call's claim of the same key is not.
 */
export async function claimKey(
  db: DbOrTx,
  scope: KeyScope,
  claim: { requestHash: string; requestId?: string; instanceId?: string } & ClaimTiming,
): Promise<ClaimToken | undefined> {
  const claimId = randomUUID();
  const rows = await retryOnLostConnection(() => claimStatement(db, scope, { ...claim, claimId }), LOST_CONNECTION_RETRY_DELAYS_MS);
  return rows[0]?.token;
}

/** The claim's instants in SQL: from the database's now() unless a clock gave them. */
function claimInstants(timing: ClaimTiming): { now: SQL; expiresAt: SQL; staleBefore: SQL } {
  if ("now" in timing) {
    return {
      now: sql`${timing.now.toISOString()}::timestamptz`,
      expiresAt: sql`${timing.expiresAt.toISOString()}::timestamptz`,
      staleBefore: sql`${timing.staleBefore.toISOString()}::timestamptz`,
    };
  }
  return {
    now: sql`now()`,
    // Not before the call may have ended (the settle timeout); completeKey then keeps it the TTL.
    expiresAt: sql`now() + ${Math.max(timing.ttlMs, timing.staleAfterMs)}::double precision * interval '1 millisecond'`,
    staleBefore: sql`now() - ${timing.staleAfterMs}::double precision * interval '1 millisecond'`,
  };
}

function claimStatement(
  db: DbOrTx,
  scope: KeyScope,
  claim: { requestHash: string; requestId?: string; instanceId?: string; claimId: string } & ClaimTiming,
): Promise<{ token: ClaimToken }[]> {
  const at = claimInstants(claim);
  return queryRows<{ token: ClaimToken }>(
    db,
    sql`
      insert into idempotency_keys as k
        (actor_id, key, field_path, request_hash, state, created_at, expires_at, request_id, claim_id, instance_id, claimed_at)
      values (${scope.actorId}, ${scope.key}, ${scope.fieldPath}, ${claim.requestHash}, 'PENDING',
              ${at.now}, ${at.expiresAt}, ${claim.requestId ?? null},
              ${claim.claimId}::uuid, ${claim.instanceId ?? null}::uuid, now())
      on conflict (actor_id, key, field_path) do update
         set request_hash = excluded.request_hash, state = 'PENDING', result = null, charge = null,
             created_at = excluded.created_at, expires_at = excluded.expires_at, request_id = excluded.request_id,
             claim_id = excluded.claim_id, instance_id = excluded.instance_id, claimed_at = excluded.claimed_at
       where k.expires_at <= ${at.now}
          -- This very claim, sent again after its answer was lost.
          or (k.state = 'PENDING' and k.claim_id = ${claim.claimId}::uuid)
          -- Its instance's lease expired and none of its holds stands (checked after the holds still
          -- running under that lease have finished).
          or (k.state = 'PENDING' and credit_claim_abandoned(k.instance_id, k.claimed_at, k.request_id))
          or (k.state = 'PENDING'
              and (k.created_at <= ${at.staleBefore}
                   or exists (select 1 from credit_ledger d
                               where d.request_id = k.request_id and d.kind = 'DEBIT'
                                 -- held by this claim's call, not by an earlier request that
                                 -- carried the same (caller-chosen) request id. Both times are
                                 -- the database's (only a test's injected clock stamps created_at).
                                 and d.created_at >= k.created_at
                                 and exists (select 1 from credit_ledger r
                                              where r.subscription_id = d.subscription_id and r.refund_of = d.id and r.kind = 'REFUND')))
              and (k.request_id is null or not exists (
                    select 1 from credit_ledger d
                     where d.request_id = k.request_id and d.kind = 'DEBIT'
                       and not exists (select 1 from credit_ledger r
                                        where r.subscription_id = d.subscription_id and r.refund_of = d.id and r.kind = 'REFUND'))))
      returning k.created_at::text as token`,
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

/**
 * Stores the outcome of the claim `claim`, kept `retention` from now; false when that claim was lost
 * (taken over after a stall).
 */
export async function completeKey(
  db: DbOrTx,
  scope: KeyScope,
  claim: ClaimToken,
  outcome: { result: unknown; charge: unknown },
  retention: KeyRetention,
): Promise<boolean> {
  const expiresAt =
    "ttlMs" in retention
      ? sql`now() + ${retention.ttlMs}::double precision * interval '1 millisecond'`
      : sql`${retention.expiresAt.toISOString()}::timestamptz`;
  const rows = await queryRows<{ done: number }>(
    db,
    sql`update idempotency_keys
           set state = 'DONE', result = ${JSON.stringify(outcome.result)}::jsonb, charge = ${JSON.stringify(outcome.charge)}::jsonb,
               expires_at = ${expiresAt}
         where actor_id = ${scope.actorId} and key = ${scope.key} and field_path = ${scope.fieldPath}
           and state = 'PENDING' and created_at = ${claim}::timestamptz
        returning 1 as done`,
  );
  return rows.length === 1;
}

/**
 * Releases the claim `claim`, if this call still holds it. Deleting it twice deletes it
 * once, so it is sent again when its connection is lost, for as long as the ledger retries: a lost
 * release would leave the key answering CONFLICT to the caller's retries.
 */
export async function releaseKey(db: DbOrTx, scope: KeyScope, claim: ClaimToken): Promise<void> {
  await retryOnLostConnection(
    () =>
      db.execute(
        sql`delete from idempotency_keys
             where actor_id = ${scope.actorId} and key = ${scope.key} and field_path = ${scope.fieldPath}
               and state = 'PENDING' and created_at = ${claim}::timestamptz`,
      ),
    LOST_CONNECTION_RETRY_DELAYS_MS,
  );
}

/**
 * Deletes up to `limit` keys expired by the database's clock (or, in tests, at the injected clock's
 * `now`); returns how many went.
 */
export async function purgeExpiredKeys(db: DbOrTx, limit: number, now?: Date): Promise<number> {
  const expiredBy = now ? sql`${now.toISOString()}::timestamptz` : sql`now()`;
  const rows = await queryRows<{ key: string }>(
    db,
    sql`delete from idempotency_keys k
         using (select actor_id, key, field_path from idempotency_keys
                 where expires_at <= ${expiredBy}
                 limit ${limit}) expired
         where k.actor_id = expired.actor_id and k.key = expired.key and k.field_path = expired.field_path
        returning k.key`,
  );
  return rows.length;
}

