/**
 * The IdempotencyGate over the idempotency_keys table. A key is scoped to the caller (token
 * subject) and the field's response path, so two callers never share a key and two metered fields
 * of one request each keep their own record.
 *
 * Stored outcome (the `result` jsonb column) is an envelope, so a field whose result is null and a
 * field that ended in a user-input error can both be replayed:
 *   { "kind": "result", "value": … }   or   { "kind": "error", "message": "…", "extensions": { "code": "BAD_USER_INPUT", … } }
 */
import { setTimeout as sleep } from "node:timers/promises";
import { GraphQLError } from "graphql";
import { sqlState } from "../db/errors.js";
import type { Logger } from "pino";
import type { Database } from "../db/database.js";
import { BadUserInputError, CreditsError, InternalError } from "../errors/errors.js";
import { requireViewer } from "../credits/credits-request.js";
import type { ChargeRecord } from "../credits/charge-collector.js";
import type { FirstClaim, IdempotencyClaim, IdempotencyGate } from "./idempotency-gate.js";
import { parseIdempotencyKey } from "./idempotency-key.js";
import { requestHash } from "./request-hash.js";
import { stillRunningConflict } from "./still-running.js";
import { debitReturns } from "../ledger/debit-returns.js";
import {
  claimFinishedUnrecorded,
  claimKey,
  completeKey,
  readKey,
  releaseKey,
  type ClaimTiming,
  type KeyRetention,
  type ClaimToken,
  type KeyScope,
} from "./idempotency-store.js";

/**
 * The answer to a retry while the key's first request holds it. That request may be running, or its
 * server may have died under it: the key is then freed once the recovery pass has refunded its hold
 * (within INSTANCE_LEASE_TTL + RECOVERY_INTERVAL, 20 s by default), so "retry later" holds either way.
 */
const STILL_RUNNING =
  "A request with this Idempotency-Key is still being processed: retry in a few seconds (if the server running it stopped, the key is free again once its hold is refunded, within about 20 s)";

export interface DatabaseIdempotencyGateOptions {
  db: Database;
  /** How long a key is kept (IDEMPOTENCY_TTL). */
  ttlMs: number;
  /**
   * A PENDING key none of whose charges stands unrefunded is treated as abandoned once one of them was
   * refunded, or, if it never held, once it is this old (CHARGE_SETTLE_TIMEOUT).
   */
  staleAfterMs: number;
  /** Largest stored outcome in JSON bytes (IDEMPOTENCY_MAX_RESULT_BYTES); a larger result is recorded as too large. */
  maxResultBytes?: number;
  /**
   * The instance lease the charge ledger holds under (src/recovery/instance-lease.ts). A claim records
   * it, and the call's holds are taken under it only (HoldRequest.requiredLease): once it has expired
   * and none of the call's holds stands, a retry takes the key over without waiting for
   * `staleAfterMs`. None: claims are taken over only as described above.
   */
  instanceId?: () => Promise<string>;
  /**
   * Tests only, to skip time: claims are stamped, expire and go stale by this clock. By default the
   * database's clock decides, so that instances whose clocks disagree judge keys alike.
   */
  clock?: () => Date;
  logger?: Logger;
}

type StoredOutcome =
  | { kind: "result"; value: unknown }
  | { kind: "error"; message: string; extensions: Record<string, unknown> }
  /** The result was larger than IDEMPOTENCY_MAX_RESULT_BYTES: the key remembers the call, not its result. */
  | { kind: "too-large"; bytes: number; limit: number }
  /** The outcome could not be stored (the database refused it, or kept failing): the key remembers the call, not its result. */
  | { kind: "not-kept" };

/**
 * Pauses before each further attempt to store an outcome whose statement failed for a reason other
 * than its data (a lost connection, a restarting database).
 */
export const STORE_RETRY_DELAYS_MS: readonly number[] = [50, 200, 800];

/** Claiming races a concurrent abandon at most this often before it answers CONFLICT. */
const CLAIM_ATTEMPTS = 3;

export function createDatabaseIdempotencyGate(options: DatabaseIdempotencyGateOptions): IdempotencyGate {
  const { db, ttlMs, staleAfterMs } = options;
  const maxResultBytes = options.maxResultBytes ?? Number.POSITIVE_INFINITY;
  const log = options.logger?.child({ component: "idempotency" });

  /** Durations for the database's clock to apply, or an injected clock's instants. */
  function claimTiming(): ClaimTiming {
    if (!options.clock) return { ttlMs, staleAfterMs };
    const now = options.clock();
    // A PENDING claim outlives its call (idempotency-store.ts): the TTL starts when the outcome is stored.
    return { now, expiresAt: new Date(now.getTime() + Math.max(ttlMs, staleAfterMs)), staleBefore: new Date(now.getTime() - staleAfterMs) };
  }

  /** How long a stored outcome is kept: the TTL from now, by the database's clock or the injected one. */
  function retention(): KeyRetention {
    return options.clock ? { expiresAt: new Date(options.clock().getTime() + ttlMs) } : { ttlMs };
  }

  function firstClaim(scope: KeyScope, claim: ClaimToken, requiredLease: string | undefined): FirstClaim {
    const store = async (outcome: StoredOutcome, charge: ChargeRecord) => {
      const stored = await storeOutcome(scope, claim, outcome, storedCharge(charge));
      if (!stored) {
        // The call outlived CHARGE_SETTLE_TIMEOUT and a retry took the key over: the retry's record stands.
        log?.warn({ event: "idempotency.claim_lost", actorId: scope.actorId, fieldPath: scope.fieldPath }, "idempotency claim was taken over before the call finished");
      }
    };
    return {
      kind: "first",
      requiredLease,
      complete: (result, charge) => store(boundedResult(result ?? null, maxResultBytes), charge),
      completeWithError: (error, charge) => store({ kind: "error", message: error.message, extensions: replayableExtensions(error) }, charge),
      abandon: async () => {
        try {
          await releaseKey(db, scope, claim);
        } catch (err) {
          // The key stays PENDING: retries get CONFLICT until its hold is refunded (the settlement
          // that follows does it), or, if it never held, until it is CHARGE_SETTLE_TIMEOUT old.
          log?.error({ event: "idempotency.release_failed", err, actorId: scope.actorId, fieldPath: scope.fieldPath }, "could not release an idempotency key");
          throw err;
        }
      },
    };
  }

  /**
   * Stores the outcome, retried with backoff; when it cannot be stored (the database refuses its data,
   * such as text jsonb cannot hold, or every attempt failed), the key is completed as `not-kept`, so a
   * retry gets a clear error instead of running and being charged again. If even that fails, the key
   * stays PENDING and, its charge standing, is never taken over (idempotency-store.ts).
   */
  async function storeOutcome(scope: KeyScope, claim: ClaimToken, outcome: StoredOutcome, charge: ChargeRecord): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await completeKey(db, scope, claim, { result: outcome, charge }, retention());
      } catch (err) {
        const refusedData = sqlState(err)?.startsWith("22") ?? false;
        if (refusedData || attempt >= STORE_RETRY_DELAYS_MS.length) {
          log?.error({ event: "idempotency.store_failed", err, actorId: scope.actorId, fieldPath: scope.fieldPath }, "could not store an idempotent outcome; the key records that it was not kept");
          return completeKey(db, scope, claim, { result: { kind: "not-kept" }, charge }, retention());
        }
        await sleep(STORE_RETRY_DELAYS_MS[attempt]);
      }
    }
  }

  return {
    async begin(field, args, ctx, fieldPath): Promise<IdempotencyClaim | undefined> {
      if (ctx.idempotencyKey === undefined) return undefined;
      const key = parseIdempotencyKey(ctx.idempotencyKey);
      const scope: KeyScope = { actorId: requireViewer(ctx).id, key, fieldPath };
      const hash = requestHash(field.coordinate, args);
      try {
        const instanceId = options.instanceId ? await options.instanceId() : undefined;
        for (let attempt = 0; attempt < CLAIM_ATTEMPTS; attempt++) {
          const claimed = await claimKey(db, scope, {
            requestHash: hash,
            ...claimTiming(),
            // Recorded so a stale claim is taken over only once this request's charges are refunded.
            requestId: ctx.requestId,
            instanceId,
          });
          if (claimed !== undefined) return firstClaim(scope, claimed, instanceId);

          const existing = await readKey(db, scope);
          if (!existing) continue; // released between our two statements: claim again
          if (existing.requestHash !== hash) {
            throw new BadUserInputError(
              "This Idempotency-Key was already used with other arguments: send a new key for a different request",
              "Idempotency-Key",
            );
          }
          if (existing.state === "PENDING") {
            // Finished and charged, its outcome lost with the database: answered as a result not kept.
            if (await claimFinishedUnrecorded(db, scope)) throw notKeptError();
            throw stillRunningConflict(STILL_RUNNING);
          }
          return replay(existing.result as StoredOutcome, await chargeAsLedgerHasIt(db, existing.charge as ChargeRecord));
        }
        throw stillRunningConflict(STILL_RUNNING);
      } catch (err) {
        if (err instanceof CreditsError) throw err;
        throw new InternalError("The idempotency key store failed", { cause: err });
      }
    },
  };
}

/**
 * The stored charge as the ledger has it now, keys in extensions.credits' order (jsonb keeps its
 * own). What a call finally cost can change after its outcome was stored: the recovery pass refunds
 * it when its settlement never committed (its instance died), an admin refunds it. A replay reports
 * the ledger, never a cost the ledger has given back, and the balance as it is now (`remaining` is
 * the balance after the request, and a replay is a request).
 */
async function chargeAsLedgerHasIt(db: Database, stored: ChargeRecord): Promise<ChargeRecord> {
  const { released, refunded, balanceNow } = await debitReturns(db, stored.subscriptionId, stored.type, stored.entryId);
  return {
    path: stored.path,
    operation: stored.operation,
    subscriptionId: stored.subscriptionId,
    type: stored.type,
    estimated: stored.estimated,
    charged: stored.charged,
    // Charges stored by the release before meters have no `actual`: not metered, so null.
    actual: stored.actual ?? null,
    released,
    refunded,
    cost: stored.charged - released - refunded,
    remaining: balanceNow,
    entryId: stored.entryId,
    adminOverride: stored.adminOverride,
    fallback: stored.fallback,
  };
}

/** The result to store, or a record that it was too large to keep (replays are bounded in size). */
function boundedResult(value: unknown, maxBytes: number): StoredOutcome {
  const bytes = Buffer.byteLength(JSON.stringify(value) ?? "null");
  return bytes > maxBytes ? { kind: "too-large", bytes, limit: maxBytes } : { kind: "result", value };
}

/** A retry of a call that ran and was charged once, but whose result could not be stored. */
function notKeptError(): BadUserInputError {
  return new BadUserInputError(
    "The result of the request made with this Idempotency-Key could not be stored, so it was not kept: " +
      "it ran and was charged once, and is not replayed. Send a new Idempotency-Key to run it again.",
    "Idempotency-Key",
  );
}

function replay(outcome: StoredOutcome, charge: ChargeRecord): IdempotencyClaim {
  if (outcome.kind === "not-kept") return { kind: "replay", result: undefined, charge, error: notKeptError() };
  if (outcome.kind === "too-large") {
    const error = new BadUserInputError(
      `The result of the request made with this Idempotency-Key was ${outcome.bytes} bytes, more than the ${outcome.limit} kept for replay: ` +
        "it ran and was charged once, and is not replayed. Send a new Idempotency-Key to run it again.",
      "Idempotency-Key",
    );
    return { kind: "replay", result: undefined, charge, error };
  }
  if (outcome.kind === "error") {
    return { kind: "replay", result: undefined, charge, error: new GraphQLError(outcome.message, { extensions: outcome.extensions }) };
  }
  return { kind: "replay", result: outcome.value, charge };
}

/** The charge as the first call recorded it, without request-specific flags. */
function storedCharge(charge: ChargeRecord): ChargeRecord {
  const { replayed: _replayed, ...rest } = charge;
  return rest;
}

/** The error's public extensions (code, field …); the HTTP status is derived from the code again on replay. */
function replayableExtensions(error: GraphQLError): Record<string, unknown> {
  const { http: _http, stacktrace: _stacktrace, ...extensions } = error.extensions ?? {};
  return extensions;
}
