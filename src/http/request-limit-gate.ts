/**
 * Who a request counts against for REQUEST_LIMIT, and the gate the HTTP layer runs before reading a
 * GraphQL request's body: the token's subject when the token is valid, else the client address (so
 * a flood of bad or missing tokens from one address is one caller). Valid tokens are cached by the
 * verifier, so this costs a map lookup for a returning caller.
 */
import type { IncomingMessage } from "node:http";
import { bearerToken, type TokenVerifier } from "../auth/verifier.js";
import type { RequestLimiter } from "./request-limit.js";

export interface RequestRefusal {
  readonly status: number;
  readonly message: string;
  readonly retryAfterSeconds: number;
}

export type RequestGate = (req: IncomingMessage) => Promise<RequestRefusal | undefined>;

async function callerOf(req: IncomingMessage, verify: TokenVerifier): Promise<string> {
  const authorization = req.headers.authorization;
  if (authorization !== undefined) {
    try {
      const token = bearerToken(authorization);
      if (token) return `user:${(await verify(token)).id}`;
    } catch {
      // A bad token is answered UNAUTHENTICATED later; here it only means "count by address".
    }
  }
  return `ip:${req.socket.remoteAddress ?? "unknown"}`;
}

export function requestLimitGate(
  limiter: RequestLimiter,
  verify: TokenVerifier,
  describe: string,
  onRefused?: () => void,
): RequestGate {
  return async (req) => {
    const verdict = limiter.take(await callerOf(req, verify));
    if (verdict.allowed) return undefined;
    onRefused?.();
    const retryAfterSeconds = Math.max(1, Math.ceil(verdict.retryAfterMs / 1000));
    return {
      status: 429,
      message: `Too many requests: at most ${describe} per caller; try again in ${retryAfterSeconds} s`,
      retryAfterSeconds,
    };
  };
}
