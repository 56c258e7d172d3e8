/**
 * The per-request context: who is calling, the request's loaders and charge collector, and the
 * application services resolvers use. Built once per HTTP request by the server.
 */
import type { Logger } from "pino";
import type { Viewer } from "../auth/viewer.js";
import { type InternalError, UnauthenticatedError } from "../errors/errors.js";
import type { ChargeCollector } from "../credits/charge-collector.js";
import type { SimulatedFailure } from "../providers/providers.js";
import type { RequestLoaders } from "./loaders.js";
import type { AppServices } from "../app/services.js";
import type { CreditsRequest } from "../credits/credits-request.js";

export interface RequestContext extends CreditsRequest {
  readonly requestId: string;
  /** Set when the request carried a valid token. */
  readonly viewer: Viewer | undefined;
  /**
   * Set when the request carried a token that failed verification (or, InternalError, that could not
   * be checked because the key set was unreadable): fields that need a caller raise it.
   */
  readonly authError: UnauthenticatedError | InternalError | undefined;
  readonly clientAddress: string;
  readonly loaders: RequestLoaders;
  readonly charges: ChargeCollector;
  readonly logger: Logger;
  readonly services: AppServices;
  /** The Idempotency-Key request header, when present. */
  readonly idempotencyKey: string | undefined;
  /** From x-simulate-failure, only when SIMULATE_FAILURES=1. */
  readonly simulateFailure: SimulatedFailure | undefined;
  /** True once the client has gone away (its connection closed): results then never reach it. */
  readonly clientGone?: () => boolean;
}

export { requireViewer, responsePath, responsePathKey } from "../credits/credits-request.js";
