/**
 * CORS for browsers (DESIGN.md, "Authentication"): CORS_ORIGINS lists the origins allowed (or "*");
 * development mode also allows any http://localhost:* and http://127.0.0.1:* origin, so a frontend's
 * dev server works with a plain `npm start`. Production allows none unless configured.
 *
 * Why not a middleware package: the server is node:http with Apollo's integration API (no Express),
 * Apollo documents CORS only through Express's `cors` middleware, and what is needed here is a set
 * lookup and a handful of constant headers. On every request this costs one header read; the rest
 * runs only when the request carries an Origin, and allocates nothing (the header values are built
 * once).
 */
import type { IncomingMessage, ServerResponse } from "node:http";

export interface CorsOptions {
  /** Allowed origins, or "*" for any (CORS_ORIGINS). */
  origins: readonly string[] | "*";
  /** Development mode: also any http://localhost:<port> and http://127.0.0.1:<port>. */
  allowLocalhost: boolean;
}

/**
 * DESIGN.md's four, plus the two headers Apollo's CSRF prevention asks of a GET or a multipart
 * request (`apollo-require-preflight`, `x-apollo-operation-name`), so a browser client can send them.
 */
export const CORS_ALLOWED_HEADERS =
  "authorization, content-type, idempotency-key, x-request-id, apollo-require-preflight, x-apollo-operation-name";
export const CORS_EXPOSED_HEADERS = "x-request-id, retry-after";
const ALLOWED_METHODS = "GET, POST, OPTIONS";
/** How long a browser may reuse a preflight answer (seconds). */
const PREFLIGHT_MAX_AGE = "600";
const LOCALHOST_ORIGIN = /^http:\/\/(localhost|127\.0\.0\.1)(:\d{1,5})?$/;

export interface CorsPolicy {
  /** Adds the CORS headers a response to this request needs (nothing when it has no allowed Origin). */
  apply(req: IncomingMessage, res: ServerResponse): void;
  /** True when this request is a CORS preflight (OPTIONS with Access-Control-Request-Method). */
  isPreflight(req: IncomingMessage): boolean;
  /** Answers a preflight: 204, with the allow headers when the origin is allowed, without them when not. */
  answerPreflight(req: IncomingMessage, res: ServerResponse): void;
}

export function createCorsPolicy(options: CorsOptions): CorsPolicy {
  const anyOrigin = options.origins === "*";
  const listed = new Set(anyOrigin ? [] : options.origins);
  const allowed = (origin: string): boolean =>
    anyOrigin || listed.has(origin) || (options.allowLocalhost && LOCALHOST_ORIGIN.test(origin));

  /** The allowed Origin of the request, or undefined. */
  function allowedOrigin(req: IncomingMessage): string | undefined {
    const origin = req.headers.origin;
    return origin !== undefined && allowed(origin) ? origin : undefined;
  }

  function setOriginHeaders(res: ServerResponse, origin: string): void {
    // "*" needs no Vary; an echoed origin does, so a shared cache never serves one origin's answer to another.
    res.setHeader("access-control-allow-origin", anyOrigin ? "*" : origin);
    if (!anyOrigin) res.setHeader("vary", "Origin");
  }

  return {
    apply(req, res) {
      const origin = allowedOrigin(req);
      if (origin === undefined) return;
      setOriginHeaders(res, origin);
      res.setHeader("access-control-expose-headers", CORS_EXPOSED_HEADERS);
    },
    isPreflight(req) {
      return req.method === "OPTIONS" && req.headers["access-control-request-method"] !== undefined;
    },
    answerPreflight(req, res) {
      const origin = allowedOrigin(req);
      if (origin !== undefined) {
        setOriginHeaders(res, origin);
        res.setHeader("access-control-allow-methods", ALLOWED_METHODS);
        res.setHeader("access-control-allow-headers", CORS_ALLOWED_HEADERS);
        res.setHeader("access-control-max-age", PREFLIGHT_MAX_AGE);
      }
      res.writeHead(204, { "content-length": "0" });
      res.end();
    },
  };
}
