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
 */
import { createRemoteJWKSet, decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from "jose";
import { InternalError, UnauthenticatedError } from "../errors/errors.js";
import { DEFAULT_CLOCK_TOLERANCE_SECONDS } from "./clock-tolerance.js";
import { DEVELOPMENT_JWT_SECRET } from "./dev-secret.js";
import { userIdProblem } from "../util/text.js";
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

export function createTokenVerifier(options: VerifierOptions): TokenVerifier {
  const secret = new TextEncoder().encode(options.secret ?? (options.jwksUrl ? undefined : DEVELOPMENT_JWT_SECRET) ?? "");
  const hasSecret = Boolean(options.secret) || !options.jwksUrl;
  const jwks = options.jwksUrl ? createRemoteJWKSet(new URL(options.jwksUrl), { cacheMaxAge: 10 * 60_000 }) : undefined;
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

  async function verifyUncached(token: string): Promise<{ viewer: Viewer; expiresAtMs: number }> {
    // A header is the client's JSON: its alg may be anything, not only a string.
    let alg: unknown;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      throw new UnauthenticatedError("Invalid token: not a JWT");
    }
    let payload: JWTPayload;
    let viaKeySet = false;
    try {
      if (alg === "HS256" && hasSecret) {
        ({ payload } = await jwtVerify(token, secret, { ...claimChecks, algorithms: ["HS256"] }));
      } else if (typeof alg === "string" && ASYMMETRIC_ALGORITHMS.includes(alg) && jwks) {
        viaKeySet = true;
        ({ payload } = await jwtVerify(token, jwks, { ...claimChecks, algorithms: ASYMMETRIC_ALGORITHMS }));
      } else {
        throw new UnauthenticatedError(`Invalid token: algorithm ${shownAlgorithm(alg)} is not accepted; this server accepts ${acceptedAlgorithms(hasSecret, Boolean(jwks))}`);
      }
    } catch (err) {
      if (viaKeySet && isKeySetFailure(err)) {
        throw new InternalError("The token could not be checked: the key set at JWT_JWKS_URL could not be read", { cause: err });
      }
      throw toUnauthenticated(err);
    }
    refuseIssuedInTheFuture(payload, clockToleranceSeconds);
    if (payload.sub === undefined && payload.role === "service_role") return serviceKeyCaller(payload);
    if (payload.sub === undefined) throw new UnauthenticatedError("Invalid token: the sub claim is missing");
    if (typeof payload.sub !== "string") throw new UnauthenticatedError("Invalid token: the sub claim must be a string user id");
    // A subject is the user id: owner and actor ids in the database, under the same rule as the
    // ownerId an admin opens a subscription for (src/util/text.ts). Control characters (NUL above
    // all, which PostgreSQL refuses in text), an unpaired surrogate (stored as U+FFFD, so "eve\ud800"
    // would read "eve\ufffd"'s subscriptions), an absurd length, a blank id or one with white space
    // at an end (no subscription could ever be opened for it) are a bad token, not a server error.
    const problem = userIdProblem(payload.sub);
    if (problem) throw new UnauthenticatedError(`Invalid token: the sub claim is not a valid user id: it ${problem}`);
    return { viewer: { id: payload.sub, isAdmin: isAdminClaims(payload) }, expiresAtMs: cachedUntilMs(payload.exp) };
  }

  return async (token: string) => {
    const cached = cache.get(token);
    if (cached) return cached;
    const { viewer, expiresAtMs } = await verifyUncached(token);
    cache.set(token, viewer, expiresAtMs);
    return viewer;
  };
}

/**
 * The caller id of Supabase's service key: a token of `role: service_role` (plus `iss`, `ref`, `iat`,
 * `exp`) that names no user, since it is the project's own backend. It is an admin; what it does is
 * recorded in the ledger under this actor id, which no user id can be mistaken for in the ledger's
 * meaning (a user whose token says `sub: "service_role"` is still told apart by `isAdmin`).
 */
export const SERVICE_KEY_CALLER_ID = "service_role";

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
 * Remembers verified tokens until they expire. Keyed by the whole token string, so a forged token
 * never matches a verified one. Oldest entries go first when full (Map keeps insertion order).
 */
class VerifiedTokenCache {
  private readonly entries = new Map<string, { viewer: Viewer; expiresAtMs: number }>();
  constructor(private readonly maxEntries: number) {}

  get(token: string): Viewer | undefined {
    const entry = this.entries.get(token);
    if (!entry) return undefined;
    if (entry.expiresAtMs <= Date.now()) {
      this.entries.delete(token);
      return undefined;
    }
    return entry.viewer;
  }

  set(token: string, viewer: Viewer, expiresAtMs: number): void {
    if (this.maxEntries <= 0) return;
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(token, { viewer, expiresAtMs });
  }
}

/** Reads the bearer token of an Authorization header; undefined when there is none. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match) throw new UnauthenticatedError("Malformed Authorization header: use Bearer <token>");
  return match[1];
}
