/** A plain route that requires `Authorization: Bearer <secret>` (METRICS_TOKEN on /metrics). */
import { createHash, timingSafeEqual } from "node:crypto";
import type { RouteHandler } from "./http-server.js";

const digest = (text: string) => createHash("sha256").update(text).digest();

export function requireBearer(secret: string | undefined, handler: RouteHandler): RouteHandler {
  if (!secret) return handler;
  // Compared as fixed-length digests, in constant time: the answer's timing says nothing of the secret.
  const expected = digest(secret);
  return (request) => {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(request.req.headers.authorization ?? "");
    if (match && timingSafeEqual(digest(match[1]), expected)) return handler(request);
    request.res.writeHead(401, {
      "content-type": "application/json; charset=utf-8",
      "www-authenticate": 'Bearer realm="metrics"',
      "x-request-id": request.requestId,
    });
    request.res.end(JSON.stringify({ error: "This route requires Authorization: Bearer <METRICS_TOKEN>" }));
  };
}
