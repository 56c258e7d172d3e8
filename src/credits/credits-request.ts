/**
 * What the credits core knows of one request (DESIGN.md, convention 10). The core is generic over
 * the host's context: it never reads the host's context type, only this per-request state, which the
 * host's own context may carry (this server's RequestContext extends it) or which createCredits
 * keeps beside an arbitrary context (src/library/request-state.ts).
 */
import type { GraphQLResolveInfo } from "graphql";
import type { Logger } from "pino";
import type { Viewer } from "../auth/viewer.js";
import { type InternalError, UnauthenticatedError } from "../errors/errors.js";
import type { ChargeCollector } from "./charge-collector.js";
import type { RequestLoaders } from "../graphql/loaders.js";

export interface CreditsRequest {
  readonly requestId: string;
  /** The caller, when the request carried valid credentials. */
  readonly viewer: Viewer | undefined;
  /** Set when the request carried credentials that failed verification (or could not be checked): metered fields raise it. */
  readonly authError?: UnauthenticatedError | InternalError | undefined;
  /** Where the call came from: the anonymous rate-limit key. */
  readonly clientAddress?: string;
  readonly loaders: RequestLoaders;
  readonly charges: ChargeCollector;
  readonly logger: Logger;
  /** The Idempotency-Key request header, when present. */
  readonly idempotencyKey: string | undefined;
  /** The subscription the host found in its context: charged by metered fields without a subscriptionId argument. */
  readonly subscriptionId?: string | undefined;
  /** True once the client has gone away (its connection closed): results then never reach it. */
  readonly clientGone?: () => boolean;
}

/** Finds the credits core's per-request state from the host's GraphQL context. */
export type RequestOf = (context: unknown) => CreditsRequest | Promise<CreditsRequest>;

/** A context that is itself a CreditsRequest (this server's). */
export const contextIsRequest: RequestOf = (context) => context as CreditsRequest;

/**
 * credits.plugin notes each request it serves (when the operation is about to be held) on the request's
 * charge collector: a field charged in a request it did not serve would be held and never settled (an
 * Apollo Server without the plugin). A symbol, so the collector's own shape and code are untouched;
 * one property write per request.
 */
const SERVED_BY_PLUGIN = Symbol("graphql-credits: served by credits.plugin");

export function markServedByPlugin(ctx: CreditsRequest): void {
  (ctx.charges as unknown as Record<symbol, boolean>)[SERVED_BY_PLUGIN] = true;
}

export function servedByPlugin(ctx: CreditsRequest): boolean {
  return (ctx.charges as unknown as Record<symbol, boolean | undefined>)[SERVED_BY_PLUGIN] === true;
}

/** The caller, or UNAUTHENTICATED (the credentials' own problem when they had one). */
export function requireViewer(ctx: CreditsRequest): Viewer {
  if (ctx.authError) throw ctx.authError;
  if (!ctx.viewer) throw new UnauthenticatedError();
  return ctx.viewer;
}

/**
 * For fields that need no token: no token reads them, but credentials that failed verification
 * (forged, expired, mis-addressed) are refused as everywhere else (401), so a client whose session
 * has ended learns it from the first field it asks for (an outside authorization audit).
 */
export function refuseFailedCredentials(ctx: CreditsRequest): void {
  if (ctx.authError instanceof UnauthenticatedError) throw ctx.authError;
}

/** "a.0.b": the response path of a field, as a stable key. */
export function responsePathKey(info: Pick<GraphQLResolveInfo, "path">): string {
  return responsePath(info).join(".");
}

/** A response path as graphql-js reports one in `errors[].path`: list indices are numbers. */
export type ResponsePath = (string | number)[];

/** The field's response path, aliases included, in the same form as an error's `path` at that place. */
export function responsePath(info: Pick<GraphQLResolveInfo, "path">): ResponsePath {
  const keys: ResponsePath = [];
  for (let p: GraphQLResolveInfo["path"] | undefined = info.path; p; p = p.prev) keys.push(p.key);
  return keys.reverse();
}
