/** Builds the GraphQL context of one HTTP request: verifies the token, creates loaders and the charge collector. */
import type { IncomingMessage } from "node:http";
import type { Viewer } from "../auth/viewer.js";
import { bearerToken, type TokenVerifier } from "../auth/verifier.js";
import { BadUserInputError, InternalError, UnauthenticatedError } from "../errors/errors.js";
import { ChargeCollector } from "../credits/charge-collector.js";
import { connectionClosed } from "../http/client-connection.js";
import { createLoaders } from "../graphql/loaders.js";
import type { RequestContext } from "../graphql/context.js";
import type { SimulatedFailure } from "../providers/providers.js";
import type { AppServices } from "./services.js";

const SIMULATED_FAILURES: ReadonlySet<string> = new Set(["system", "input", "slow"]);

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * The request's one Authorization header. node:http keeps the first of several and drops the rest,
 * so a request with two (the second a stranger's, or garbage) would run silently as the first's
 * caller; two are refused, as two tokens in one header are.
 */
function authorizationHeader(req: IncomingMessage): string | undefined {
  const lines = req.headersDistinct?.authorization;
  if (lines && lines.length > 1) throw new UnauthenticatedError(`Send one Authorization header: this request has ${lines.length}`);
  return header(req, "authorization");
}

/**
 * The request's one Idempotency-Key. node:http joins two of them into "a, b", which is printable ASCII
 * and so a key of its own: a request sent with two keys (a proxy adding one, a client library another)
 * ran under a key neither of them names, and its retries, sending one, never found it.
 */
function idempotencyKeyHeader(req: IncomingMessage): string | undefined {
  const lines = req.headersDistinct?.["idempotency-key"];
  if (lines && lines.length > 1) throw new BadUserInputError(`Send one Idempotency-Key header: this request has ${lines.length}`, "Idempotency-Key");
  return header(req, "idempotency-key");
}

export function createContextFactory(services: AppServices, verify: TokenVerifier) {
  return async (req: IncomingMessage, requestId: string): Promise<RequestContext> => {
    let viewer: Viewer | undefined;
    let authError: UnauthenticatedError | InternalError | undefined;
    try {
      const token = bearerToken(authorizationHeader(req));
      if (token) viewer = await verify(token);
    } catch (err) {
      // The verifier's own answers (a bad token, or a key set it could not read) stand; anything else is a bad token.
      authError = err instanceof UnauthenticatedError || err instanceof InternalError ? err : new UnauthenticatedError("Invalid token");
    }
    const simulate = services.config.SIMULATE_FAILURES ? header(req, "x-simulate-failure") : undefined;
    return {
      requestId,
      viewer,
      authError,
      clientAddress: req.socket.remoteAddress ?? "unknown",
      loaders: createLoaders(services.db),
      charges: new ChargeCollector(),
      logger: services.logger.child({ requestId }),
      services,
      idempotencyKey: idempotencyKeyHeader(req),
      simulateFailure: simulate && SIMULATED_FAILURES.has(simulate) ? (simulate as SimulatedFailure) : undefined,
      clientGone: () => connectionClosed(req.socket),
    };
  };
}
