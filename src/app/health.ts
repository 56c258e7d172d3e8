/** GET /health: 200 when the database answers within a second or two, 503 when it does not. */
import type { DatabaseHandle } from "../db/database.js";
import type { RouteHandler } from "../http/http-server.js";

const PING_TIMEOUT_MS = 2_000;

export function healthRoute(database: DatabaseHandle): RouteHandler {
  return async ({ res, requestId }) => {
    let ok = true;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        database.ping(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error("timeout")), PING_TIMEOUT_MS);
        }),
      ]);
    } catch {
      ok = false;
    } finally {
      clearTimeout(timer);
    }
    res.writeHead(ok ? 200 : 503, { "content-type": "application/json; charset=utf-8", "x-request-id": requestId });
    res.end(JSON.stringify({ status: ok ? "ok" : "unavailable", database: ok ? "up" : "down", backend: database.kind }));
  };
}
