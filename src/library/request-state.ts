/**
 * The credits core's per-request state for a host whose context knows nothing of it: kept in a
 * WeakMap keyed by the host's context object, created on the request's first use from the host's
 * option functions (who is calling, which subscription, the request id …), gone with the context.
 * What the host does not say is read from the HTTP request Apollo received (the Idempotency-Key
 * header), which the library's plugin notes when the request starts.
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { Viewer } from "../auth/viewer.js";
import { ChargeCollector } from "../credits/charge-collector.js";
import type { CreditsRequest, RequestOf } from "../credits/credits-request.js";
import type { Database } from "../db/database.js";
import { UnauthenticatedError } from "../errors/errors.js";
import { createLoaders } from "../graphql/loaders.js";

/** How the credits core reads the host's context. Every function is optional but `caller`. */
export interface ContextReaders<TContext> {
  /** The caller ({ id, isAdmin }), or undefined when anonymous. Throwing means the credentials were bad (UNAUTHENTICATED). */
  caller(context: TContext): Viewer | undefined | Promise<Viewer | undefined>;
  /** The subscription to charge when a metered field has no subscriptionId argument. */
  subscription?(context: TContext): string | undefined;
  /** The request id the host logs with (a random UUID otherwise). */
  requestId?(context: TContext): string | undefined;
  /**
   * The Idempotency-Key the client sent. Without this reader the library reads the request's
   * `Idempotency-Key` header itself (unless `idempotency: false`).
   */
  idempotencyKey?(context: TContext): string | undefined;
  /** The client's address: the anonymous rate-limit key. */
  clientAddress?(context: TContext): string | undefined;
  /** True once the client went away: its results are then refunded, never delivered. */
  clientGone?(context: TContext): boolean;
}

/** The neutral answer to a metered call without a caller: the host's own way of signing in is its business. */
export const DEFAULT_UNAUTHENTICATED_MESSAGE = "Authentication required: sign in and send the request with your credentials";

/** How the state is completed beyond the host's readers. */
export interface RequestStateDefaults {
  /** The request's HTTP header (lower-case name), as Apollo received it; undefined outside HTTP. */
  header(context: object, name: string): string | undefined;
  /** Read the Idempotency-Key header when the host gives no idempotencyKey reader. */
  idempotencyHeader: boolean;
  /** The UNAUTHENTICATED message of a metered call without a caller. */
  unauthenticatedMessage: string;
}

export function requestStates<TContext>(readers: ContextReaders<TContext>, db: Database, logger: Logger, defaults: RequestStateDefaults): RequestOf {
  const states = new WeakMap<object, Promise<CreditsRequest>>();
  const create = async (context: TContext): Promise<CreditsRequest> => {
    let viewer: Viewer | undefined;
    let authError: UnauthenticatedError | undefined;
    try {
      viewer = await readers.caller(context);
    } catch (err) {
      authError = err instanceof UnauthenticatedError ? err : new UnauthenticatedError("Invalid credentials: sign in again");
    }
    // No caller: metered fields answer UNAUTHENTICATED in the host's words, not this server's (Bearer tokens).
    if (!viewer && !authError) authError = new UnauthenticatedError(defaults.unauthenticatedMessage);
    const requestId = readers.requestId?.(context) ?? randomUUID();
    return {
      requestId,
      viewer,
      authError,
      clientAddress: readers.clientAddress?.(context) ?? "unknown",
      subscriptionId: readers.subscription?.(context),
      loaders: createLoaders(db),
      charges: new ChargeCollector(),
      logger: logger.child({ requestId }),
      // Validated where it is used, as the server's header is (1 to 255 printable ASCII characters, else BAD_USER_INPUT).
      idempotencyKey: readers.idempotencyKey
        ? readers.idempotencyKey(context)
        : defaults.idempotencyHeader
          ? defaults.header(context as object, "idempotency-key")
          : undefined,
      clientGone: readers.clientGone ? () => readers.clientGone!(context) : undefined,
    };
  };
  return (context) => {
    if (typeof context !== "object" || context === null) throw new Error("createCredits: the GraphQL context must be an object");
    let state = states.get(context);
    if (!state) states.set(context, (state = create(context as TContext)));
    return state;
  };
}
