/**
 * Verifies bearer tokens with jose: HS256 with JWT_SECRET (Supabase's project JWT secret works as
 * is) and RS256/ES256 through JWT_JWKS_URL. Issuer and audience are checked when configured, `exp`
 * and `nbf` when present, and a token issued (`iat`) in the future is refused, all three with
 * JWT_CLOCK_TOLERANCE seconds of leeway for the issuer's clock and ours disagreeing; `sub` is
 * required and must be a user id by the rule createSubscription's ownerId follows too
 * (src/util/text.ts), except on Supabase's service key, which has none (below). Any failure is
 * UNAUTHENTICATED with a message that says what is wrong (an expired token, one not valid yet,
 * which claim) and nothing about the key; the same words close a refused WebSocket, so they stay
 * short.
 *
 * A verified token is remembered until its `exp` (VerifiedTokenCache). One verified through the key
 * set is remembered only while that key set is still the current one and fresh: a key the issuer
 * removes (rotation, revocation) stops being accepted once the set is fetched again, and at the
 * latest KEY_SET_MAX_AGE_MS after its removal, however long its tokens live.
 */
import {
  createRemoteJWKSet,
  decodeProtectedHeader,
  errors,
  jwksCache,
  jwtVerify,
  type ExportedJWKSCache,
  type JWKSCacheInput,
  type JWTPayload,
  type RemoteJWKSet,
} from "jose";
import { InternalError, UnauthenticatedError } from "../errors/errors.js";
import { DEFAULT_CLOCK_TOLERANCE_SECONDS } from "./clock-tolerance.js";
import { DEVELOPMENT_JWT_SECRET } from "./dev-secret.js";
import { SERVICE_KEY_USER_ID, userIdProblem } from "../util/text.js";
import { isAdminClaims, type Viewer } from "./viewer.js";

export interface VerifierOptions {
  secret?: string;
  jwksUrl?: string;
  issuer?: string;
  audience?: string;
  /** Verified tokens kept in memory, so a client's repeated token costs one verification. */
  cacheSize?: number;
  /** Leeway for `exp`, `nbf` and `iat` against this server's clock (JWT_CLOCK_TOLERANCE), in seconds. */
  clockToleranceSeconds?: number;
}

export type TokenVerifier = (token: string) => Promise<Viewer>;

const ASYMMETRIC_ALGORITHMS = ["RS256", "ES256"];

/** How long a fetched key set is used before it is fetched again (jose's cacheMaxAge, its default). */
const KEY_SET_MAX_AGE_MS = 10 * 60_000;
/**
 * How soon after a fetch a token naming a key the set does not hold fetches it again (jose's
 * cooldownDuration, 30 s by default): a key the issuer has just started signing with is accepted
 * within seconds, not refused for half a minute. Not lower: an unknown `kid` (anyone can make one up)
 * triggers at most one fetch per cooldown, so this bounds what a flood of them costs the key set's host.
 */
const KEY_SET_COOLDOWN_MS = 5_000;

/** The key set at JWT_JWKS_URL, and which fetch of it jose verifies with now. */
interface KeySet {
  resolve: RemoteJWKSet;
  /**
   * The set jose holds now: a new object on every successful fetch, so a cached verdict can tell
   * whether the set that verified its token has been replaced since. NOT_FETCHED before the first.
   */
  current(): object;
}

const NOT_FETCHED = Object.freeze({});

/**
 * jose's remote key set, watched through its jwksCache option: jose stores each set it fetches
 * there (it is only read here, never seeded, so it trusts nothing but what it fetched itself).
 * RemoteJWKSet's own jwks() returns a new copy on every call, so it cannot say whether the set changed.
 */
function remoteKeySet(url: string): KeySet {
  const fetched: Partial<ExportedJWKSCache> = {};
  const resolve = createRemoteJWKSet(new URL(url), {
    cacheMaxAge: KEY_SET_MAX_AGE_MS,
    cooldownDuration: KEY_SET_COOLDOWN_MS,
    [jwksCache]: fetched as JWKSCacheInput,
  });
  return { resolve, current: () => fetched.jwks ?? NOT_FETCHED };
}

/** A verified token, as the cache keeps it. */
interface Verdict {
  viewer: Viewer;
  /** Until when it may be answered from the cache: the token's expiry, if it has one. */
  expiresAtMs: number;
  /** For a token verified through the key set: the set jose held just before verifying it (KeySet.current). */
  keySet?: object;
}

export function createTokenVerifier(options: VerifierOptions): TokenVerifier {
  const secret = new TextEncoder().encode(options.secret ?? (options.jwksUrl ? undefined : DEVELOPMENT_JWT_SECRET) ?? "");
  const hasSecret = Boolean(options.secret) || !options.jwksUrl;
  const keySet = options.jwksUrl ? remoteKeySet(options.jwksUrl) : undefined;
  const clockToleranceSeconds = options.clockToleranceSeconds ?? DEFAULT_CLOCK_TOLERANCE_SECONDS;
  const claimChecks = {
    issuer: options.issuer,
    audience: options.audience,
    clockTolerance: clockToleranceSeconds,
    // `exp` is checked when present but not required: DESIGN.md refuses "no, bad or expired" tokens,
    // and PostgREST (Supabase's own API) accepts a token without one. Which tokens expire is the
    // issuer's choice; every identity provider we target sets `exp`.
    // `sub` is required too, but checked below: Supabase's service key is a valid token without one.
  };
  const cache = new VerifiedTokenCache(options.cacheSize ?? 10_000);

  async function verifyUncached(token: string): Promise<Verdict> {
    // A header is the client's JSON: its alg may be anything, not only a string.
    let alg: unknown;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      throw new UnauthenticatedError("Invalid token: not a JWT");
    }
    let payload: JWTPayload;
    let viaKeySet = false;
    // Taken before jose verifies (and may fetch the set): a fetch that lands meanwhile, perhaps without
    // the token's key, then makes the next cache hit verify again rather than trust a set it never saw.
    let verifiedWith: object | undefined;
    try {
      if (alg === "HS256" && hasSecret) {
        ({ payload } = await jwtVerify(token, secret, { ...claimChecks, algorithms: ["HS256"] }));
      } else if (typeof alg === "string" && ASYMMETRIC_ALGORITHMS.includes(alg) && keySet) {
        viaKeySet = true;
        verifiedWith = keySet.current();
        ({ payload } = await jwtVerify(token, keySet.resolve, { ...claimChecks, algorithms: ASYMMETRIC_ALGORITHMS }));
      } else {
        throw new UnauthenticatedError(`Invalid token: algorithm ${shownAlgorithm(alg)} is not accepted; this server accepts ${acceptedAlgorithms(hasSecret, Boolean(keySet))}`);
      }
    } catch (err) {
      if (viaKeySet && isKeySetFailure(err)) {
        throw new InternalError("The token could not be checked: the key set at JWT_JWKS_URL could not be read", { cause: err });
      }
      throw toUnauthenticated(err);
    }
    refuseIssuedInTheFuture(payload, clockToleranceSeconds);
    // The service key names no user; one that says `sub: "service_role"` is the same key.
    if ((payload.sub === undefined || payload.sub === SERVICE_KEY_CALLER_ID) && payload.role === "service_role") return { ...serviceKeyCaller(payload), keySet: verifiedWith };
    if (payload.sub === undefined) throw new UnauthenticatedError("Invalid token: the sub claim is missing");
    if (typeof payload.sub !== "string") throw new UnauthenticatedError("Invalid token: the sub claim must be a string user id");
    // A subject is the user id: owner and actor ids in the database, under the same rule as the
    // ownerId an admin opens a subscription for (src/util/text.ts). Control characters (NUL above
    // all, which PostgreSQL refuses in text), an unpaired surrogate (stored as U+FFFD, so "eve\ud800"
    // would read "eve\ufffd"'s subscriptions), an absurd length, a blank id or one with white space
    // at an end (no subscription could ever be opened for it) are a bad token, not a server error.
    const problem = userIdProblem(payload.sub);
    if (problem) throw new UnauthenticatedError(`Invalid token: the sub claim is not a valid user id: it ${problem}`);
    return { viewer: { id: payload.sub, isAdmin: isAdminClaims(payload) }, expiresAtMs: cachedUntilMs(payload.exp), keySet: verifiedWith };
  }

  /**
   * Whether a cached verdict still holds: always for HS256 (JWT_SECRET changes only with a restart);
   * through the key set, only while the set that verified it is still jose's current one and fresh.
   * Otherwise the token is verified again, and jose fetches a stale set first.
   */
  function stillHolds(verdict: Verdict): boolean {
    if (verdict.keySet === undefined) return true;
    return keySet !== undefined && keySet.resolve.fresh && verdict.keySet === keySet.current();
  }

  return async (token: string) => {
    const cached = cache.get(token);
    if (cached && stillHolds(cached)) return cached.viewer;
    const verdict = await verifyUncached(token);
    cache.set(token, verdict);
    return verdict.viewer;
  };
}

/**
 * The caller id of Supabase's service key: a token of `role: service_role` (plus `iss`, `ref`, `iat`,
 * `exp`) that names no user, since it is the project's own backend. It is an admin; what it does is
 * recorded in the ledger under this actor id, which no user may have (userIdProblem refuses it).
 */
export const SERVICE_KEY_CALLER_ID = SERVICE_KEY_USER_ID;

function serviceKeyCaller(payload: JWTPayload): { viewer: Viewer; expiresAtMs: number } {
  return { viewer: { id: SERVICE_KEY_CALLER_ID, isAdmin: true }, expiresAtMs: cachedUntilMs(payload.exp) };
}

/**
 * A token whose `iat` is further ahead of this server's clock than the tolerance was minted by a
 * clock that is wrong, or minted to outlive its `exp`-less life: refused. jose checks `iat` only
 * with maxTokenAge, which would also require the claim (and PostgREST accepts tokens without one).
 * jose has already refused an `iat` that is not a number.
 */
function refuseIssuedInTheFuture(payload: JWTPayload, toleranceSeconds: number): void {
  if (typeof payload.iat === "number" && payload.iat > Date.now() / 1000 + toleranceSeconds) {
    throw new UnauthenticatedError("Token issued in the future: its iat is ahead of this server's clock; check the clocks");
  }
}

/** A token without `exp` is verified again after this long, so the cache never keeps it for good. */
const UNEXPIRING_TOKEN_CACHE_MS = 10 * 60_000;

/** Until when a verified token may be answered from the cache: its expiry, if it has one. */
function cachedUntilMs(exp: number | undefined): number {
  return exp === undefined ? Date.now() + UNEXPIRING_TOKEN_CACHE_MS : exp * 1000;
}

/**
 * The key set at JWT_JWKS_URL could not be read (down, too slow, not a key set): the token may be
 * perfectly good, so this is the server's fault, not the client's. Answered as an internal error
 * (masked 500, logged with its cause), never as "Invalid token", which would send the user to sign
 * in again for nothing.
 */
function isKeySetFailure(err: unknown): boolean {
  if (err instanceof UnauthenticatedError) return false;
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid || err instanceof errors.JWKSMultipleMatchingKeys) return true;
  // Errors of the token itself are jose's subclasses; jose's base JOSEError (an HTTP status other
  // than 200 from the key set) and anything that is not jose's (fetch failed) come from reading it.
  return !(err instanceof errors.JOSEError) || err.constructor === errors.JOSEError;
}

function toUnauthenticated(err: unknown): UnauthenticatedError {
  if (err instanceof UnauthenticatedError) return err;
  if (err instanceof errors.JWTExpired) return new UnauthenticatedError("Token expired: sign in again");
  if (err instanceof errors.JWTClaimValidationFailed) return new UnauthenticatedError(claimMessage(err.claim, err.reason));
  if (err instanceof errors.JWSSignatureVerificationFailed) return new UnauthenticatedError("Invalid token: bad signature");
  if (err instanceof errors.JOSEAlgNotAllowed) return new UnauthenticatedError("Invalid token: algorithm not accepted");
  if (err instanceof errors.JWKSNoMatchingKey) return new UnauthenticatedError("Invalid token: signed by an unknown key");
  return new UnauthenticatedError("Invalid token");
}

/**
 * What is wrong with a claim jose refused, and what to do. Kept short: the same words end a
 * WebSocket with 4401, whose close reason holds 123 bytes.
 */
function claimMessage(claim: string, reason: string): string {
  if (reason === "missing") return `Invalid token: the ${claim} claim is missing`;
  if (reason === "invalid") return `Invalid token: the ${claim} claim must be a number (seconds since 1970)`;
  switch (claim) {
    case "nbf":
      return "Token not valid yet: its nbf is in the future; retry then, or check the clocks";
    case "iss":
      return "Invalid token: the iss claim names an issuer this server does not accept";
    case "aud":
      return "Invalid token: the aud claim does not name this server's audience";
    default:
      return `Invalid token: the ${claim} claim is not accepted`;
  }
}

/** A header's `alg` as a message may show it: a short name, never an object or a long string. */
function shownAlgorithm(alg: unknown): string {
  if (alg === undefined) return "none";
  return typeof alg === "string" && /^[A-Za-z0-9+_-]{1,20}$/.test(alg) ? alg : "(not a known name)";
}

function acceptedAlgorithms(hasSecret: boolean, hasKeySet: boolean): string {
  return [...(hasSecret ? ["HS256"] : []), ...(hasKeySet ? ASYMMETRIC_ALGORITHMS : [])].join(", ");
}

/**
 * Remembers verified tokens until they expire (whether a verdict through the key set still holds is
 * the verifier's to say). Keyed by the whole token string, so a forged token never matches a verified
 * one. Oldest entries go first when full (Map keeps insertion order).
 */
class VerifiedTokenCache {
  private readonly entries = new Map<string, Verdict>();
  constructor(private readonly maxEntries: number) {}

  get(token: string): Verdict | undefined {
    const entry = this.entries.get(token);
    if (!entry) return undefined;
    if (entry.expiresAtMs <= Date.now()) {
      this.entries.delete(token);
      return undefined;
    }
    return entry;
  }

  set(token: string, verdict: Verdict): void {
    if (this.maxEntries <= 0) return;
    // A token verified again replaces its own entry, not the oldest one.
    if (!this.entries.delete(token) && this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(token, verdict);
  }
}

/** Reads the bearer token of an Authorization header; undefined when there is none. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match) throw new UnauthenticatedError("Malformed Authorization header: use Bearer <token>");
  return match[1];
}
