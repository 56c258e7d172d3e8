/**
 * The credits core's per-request state for a host whose context knows nothing of it: kept in a
 * WeakMap keyed by the host's context object, created on the request's first use from the host's
 * option functions (who is calling, which subscription, the request id …), gone with the context.
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
  /** The Idempotency-Key the client sent, when the host supports retries of metered mutations. */
  idempotencyKey?(context: TContext): string | undefined;
  /** The client's address: the anonymous rate-limit key. */
  clientAddress?(context: TContext): string | undefined;
  /** True once the client went away: its results are then refunded, never delivered. */
  clientGone?(context: TContext): boolean;
}

export function requestStates<TContext>(readers: ContextReaders<TContext>, db: Database, logger: Logger): RequestOf {
  const states = new WeakMap<object, Promise<CreditsRequest>>();
  const create = async (context: TContext): Promise<CreditsRequest> => {
    let viewer: Viewer | undefined;
    let authError: UnauthenticatedError | undefined;
    try {
      viewer = await readers.caller(context);
    } catch (err) {
      authError = err instanceof UnauthenticatedError ? err : new UnauthenticatedError("Invalid credentials");
    }
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
      idempotencyKey: readers.idempotencyKey?.(context),
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
