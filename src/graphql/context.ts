/**
 * The per-request context: who is calling, the request's loaders and charge collector, and the
 * application services resolvers use. Built once per HTTP request by the server.
 */
import type { GraphQLResolveInfo } from "graphql";
import type { Logger } from "pino";
import type { Viewer } from "../auth/viewer.js";
import { UnauthenticatedError } from "../errors/errors.js";
import type { ChargeCollector } from "../credits/charge-collector.js";
import type { SimulatedFailure } from "../providers/providers.js";
import type { RequestLoaders } from "./loaders.js";
import type { AppServices } from "../app/services.js";

export interface RequestContext {
  readonly requestId: string;
  /** Set when the request carried a valid token. */
  readonly viewer: Viewer | undefined;
  /** Set when the request carried a token that failed verification: fields that need a caller raise it. */
  readonly authError: UnauthenticatedError | undefined;
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

/** The caller, or UNAUTHENTICATED (the token's own problem when it had one). */
export function requireViewer(ctx: RequestContext): Viewer {
  if (ctx.authError) throw ctx.authError;
  if (!ctx.viewer) throw new UnauthenticatedError();
  return ctx.viewer;
}

/** "a.0.b": the response path of a field, as a stable key. */
export function responsePathKey(info: Pick<GraphQLResolveInfo, "path">): string {
  return responsePath(info).join(".");
}

export function responsePath(info: Pick<GraphQLResolveInfo, "path">): string[] {
  const keys: string[] = [];
  for (let p: GraphQLResolveInfo["path"] | undefined = info.path; p; p = p.prev) keys.push(String(p.key));
  return keys.reverse();
}
