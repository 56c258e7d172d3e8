/**
 * The Idempotency-Key header on admin mutations (createSubscription, grantCredits, …), so a payment
 * webhook that delivers twice grants once. Same semantics as on metered mutations, over the same
 * store (idempotency_keys, src/idempotency/idempotency-store.ts) and request hash: keyed by caller,
 * key and field path; a retry with the same arguments gets the stored result again; a retry while
 * the first still runs gets CONFLICT (409); the same key with other arguments gets BAD_USER_INPUT;
 * kept IDEMPOTENCY_TTL.
 *
 * Exactly once, crash or not: the key is claimed (PENDING, committed, so a concurrent retry sees it),
 * then the mutation's write and the key's completion commit in ONE transaction, which also checks
 * that this call still holds its claim. So a key is DONE exactly when its change committed: a crash
 * before the commit leaves the key PENDING with nothing changed (a retry runs once the claim is stale,
 * CHARGE_SETTLE_TIMEOUT), and a call whose claim was taken over rolls its change back. A mutation that
 * fails changed nothing, so its key is released and a retry runs afresh.
 *
 * A killed database connection costs the caller no error either: when the write's transaction loses
 * its connection, whether it committed is unknown, so the claim is released (a statement that only
 * removes it while still PENDING, that is when nothing committed) and the call claims again. A key
 * found DONE then is this call's own commit, answered with what it stored; one claimed again runs
 * the write afresh. Without a key there is no such lookup, and the lost connection is the caller's
 * 500: the header is what makes an admin mutation safe to send again.
 *
 * Use, around the write of any mutation (the write must use the handle it is given):
 *   const { value, replayed } = await idempotentMutation(ctx, info, (db) => changeCredits(db, change));
 *
 * A retry gets the first call's response, so what is stored must be the whole answer. When the value
 * has nested fields that field resolvers read from the database (a subscription's balances, a
 * balance's threshold), pass `freeze`: with a key, it reads them in the write's transaction into the
 * stored value (src/admin/frozen-answer.ts), and a replay answers them as the first call did.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { getArgumentValues, type GraphQLResolveInfo } from "graphql";
import type { DbOrTx } from "../db/database.js";
import { lostConnection } from "../db/errors.js";
import { READ_RETRY_DELAYS_MS } from "../db/lost-connection-retry.js";
import { BadUserInputError, InternalError } from "../errors/errors.js";
import { requireViewer, responsePathKey, type RequestContext } from "../graphql/context.js";
import { parseIdempotencyKey } from "../idempotency/idempotency-key.js";
import { claimKey, completeKey, readKey, releaseKey, type ClaimToken, type KeyScope } from "../idempotency/idempotency-store.js";
import { requestHash } from "../idempotency/request-hash.js";
import { stillRunningConflict } from "../idempotency/still-running.js";

export interface MutationOutcome<T> {
  value: T;
  /** True when `value` is the stored result of an earlier call with this key: nothing ran now. */
  replayed: boolean;
}

/** Claiming races a concurrent release at most this often before it answers CONFLICT. */
const CLAIM_ATTEMPTS = 3;

/**
 * Pauses before each new claim after the write lost its connection: the reads' schedule (about
 * 2.6 s), since each attempt is a claim, a transaction and a completion, all on fresh connections.
 */
const LOST_WRITE_RETRY_DELAYS_MS = READ_RETRY_DELAYS_MS;

const STILL_RUNNING = "A request with this Idempotency-Key is still being processed: retry once it has finished";

/** Adds to a mutation's value, in its transaction, what its field resolvers would otherwise read later. */
export type Freeze<T> = (tx: DbOrTx, value: T) => Promise<T>;

/** Runs `write` once per Idempotency-Key (in a transaction then); without the header, just runs it on the database. */
export async function idempotentMutation<T>(
  ctx: RequestContext,
  info: GraphQLResolveInfo,
  write: (db: DbOrTx) => Promise<T>,
  freeze?: Freeze<T>,
): Promise<MutationOutcome<T>> {
  const db = ctx.services.db;
  if (ctx.idempotencyKey === undefined) return { value: await write(db), replayed: false };

  const scope: KeyScope = { actorId: requireViewer(ctx).id, key: parseIdempotencyKey(ctx.idempotencyKey), fieldPath: responsePathKey(info) };
  const hash = requestHash(`${info.parentType.name}.${info.fieldName}`, fieldArguments(info));
  const { IDEMPOTENCY_TTL, CHARGE_SETTLE_TIMEOUT } = ctx.services.config;
  let lostWrites = 0;
  for (let attempt = 0; attempt < CLAIM_ATTEMPTS; attempt++) {
    // Stamped, kept and judged stale by the database's clock: a key claimed on an instance whose
    // clock is behind or ahead must still be found by a retry on another.
    const claimed = await keyStore(() =>
      claimKey(db, scope, { requestHash: hash, ttlMs: IDEMPOTENCY_TTL, staleAfterMs: CHARGE_SETTLE_TIMEOUT }),
    );
    if (claimed !== undefined) {
      try {
        return { value: await runClaimed(ctx, scope, claimed, write, freeze), replayed: false };
      } catch (err) {
        if (!lostConnection(err) || lostWrites >= LOST_WRITE_RETRY_DELAYS_MS.length) throw err;
        ctx.logger.warn({ component: "idempotency", event: "idempotency.write_connection_lost", fieldPath: scope.fieldPath, attempt: lostWrites + 1 }, "admin mutation lost its database connection: looking its commit up");
        await sleep(LOST_WRITE_RETRY_DELAYS_MS[lostWrites++]);
        attempt--; // not a claiming race: claim again as if first
        continue;
      }
    }

    const existing = await keyStore(() => readKey(db, scope));
    if (!existing) continue; // released between our two statements: claim again
    if (existing.requestHash !== hash) {
      throw new BadUserInputError("This Idempotency-Key was already used with other arguments: send a new key for a different request", "Idempotency-Key");
    }
    if (existing.state === "PENDING") throw stillRunningConflict(STILL_RUNNING);
    // After a lost connection, the only call that can have completed the key is this one (its claim
    // is only released while PENDING, and no other call takes a claim over before it is stale).
    const committedByThisCall = lostWrites > 0;
    if (!committedByThisCall) ctx.logger.info({ component: "idempotency", event: "idempotency.replayed", fieldPath: scope.fieldPath }, "admin mutation replayed");
    return { value: storedValue(existing.result) as T, replayed: !committedByThisCall };
  }
  throw stillRunningConflict(STILL_RUNNING);
}

/** A statement on the key store; its failure is a 500 that says so (the mutation's own errors pass as they are). */
async function keyStore<T>(statement: () => Promise<T>): Promise<T> {
  try {
    return await statement();
  } catch (err) {
    throw new InternalError("The idempotency key store failed", { cause: err });
  }
}

/** The write and the key's completion, committed together; the claim released when they fail. */
async function runClaimed<T>(
  ctx: RequestContext,
  scope: KeyScope,
  claim: ClaimToken,
  write: (db: DbOrTx) => Promise<T>,
  freeze: Freeze<T> | undefined,
): Promise<T> {
  const db = ctx.services.db;
  try {
    return await db.transaction(async (tx) => {
      const written = await write(tx);
      // The answer the first call gives is the one every replay gives: read in this transaction, stored with the key.
      const value = freeze ? await freeze(tx, written) : written;
      const stored = await completeKey(tx, scope, claim, { result: { kind: "result", value: encodeValue(value) }, charge: null }, { ttlMs: ctx.services.config.IDEMPOTENCY_TTL });
      // A retry took the claim over (this call outlived CHARGE_SETTLE_TIMEOUT): its run stands, this one rolls back.
      if (!stored) throw stillRunningConflict(STILL_RUNNING);
      return value;
    });
  } catch (err) {
    await releaseKey(db, scope, claim).catch((releaseError: unknown) => {
      // The key stays PENDING, with nothing changed: retries get CONFLICT until the claim is stale.
      ctx.logger.error({ component: "idempotency", event: "idempotency.release_failed", err: releaseError, fieldPath: scope.fieldPath }, "could not release an idempotency key");
    });
    throw err;
  }
}

/** The field's arguments as graphql coerced them (variables filled in), so equal requests hash equally. */
function fieldArguments(info: GraphQLResolveInfo): Record<string, unknown> {
  const field = info.parentType.getFields()[info.fieldName];
  return getArgumentValues(field, info.fieldNodes[0], info.variableValues);
}

/** jsonb keeps no Date: a Date is stored as { "$date": ISO string } and revived on replay. */
function encodeValue(value: unknown): unknown {
  return JSON.parse(
    JSON.stringify(value ?? null, function (this: Record<string, unknown>, key: string, json: unknown) {
      const raw = this[key];
      return raw instanceof Date ? { $date: raw.toISOString() } : json;
    }),
  );
}

function storedValue(result: unknown): unknown {
  const envelope = result as { kind?: string; value?: unknown } | null;
  return reviveDates(envelope?.value ?? null);
}

function reviveDates(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reviveDates);
  if (value === null || typeof value !== "object") return value;
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record);
  if (keys.length === 1 && keys[0] === "$date" && typeof record.$date === "string") return new Date(record.$date);
  return Object.fromEntries(keys.map((key) => [key, reviveDates(record[key])]));
}
