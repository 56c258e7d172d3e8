/**
 * GET (and HEAD) /health: 200 when the database answers within a second or two, 503 when it does not. It also
 * says whether the rate-limit store (Redis) answers: `"rateLimitStore": "up" | "down"`, with
 * `"status": "degraded"` (still 200: the server serves, but metered calls are refused or unlimited
 * per RATE_LIMIT_ON_STORE_ERROR) when it does not (DESIGN.md, "Observability"); and whether the
 * live balance's notification session hears notifications: `"liveBalance": "up" | "down" |
 * "unknown"` (src/live/channel-probe.ts), "down" being degraded too (subscribers get no events).
 * From a stop's signal on it says 503 `"status": "stopping"` (the other fields as ever): the server
 * still serves during its grace, but a balancer that checks health routes elsewhere meanwhile.
 */
import type { DatabaseHandle } from "../db/database.js";
import type { RouteHandler } from "../http/http-server.js";
import type { ChannelState } from "../live/channel-probe.js";

const PING_TIMEOUT_MS = 2_000;

/** Whatever can be pinged; an in-process store has no ping and is always up. */
export interface PingableStore {
  ping?(): Promise<void>;
}

async function answers(ping: () => Promise<unknown>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      ping(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error("timeout")), PING_TIMEOUT_MS);
      }),
    ]);
    return true;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

export function healthRoute(
  database: DatabaseHandle,
  rateLimitStore: PingableStore = {},
  liveChannel: () => ChannelState = () => "up",
  /** Whether the server is stopping (its graceful stop has begun). */
  stopping: () => boolean = () => false,
): RouteHandler {
  return async ({ res, requestId }) => {
    const storePing = rateLimitStore.ping?.bind(rateLimitStore);
    const [ok, storeUp] = await Promise.all([answers(() => database.ping()), storePing ? answers(storePing) : true]);
    const liveBalance = liveChannel();
    const leaving = stopping();
    const status = leaving ? "stopping" : !ok ? "unavailable" : storeUp && liveBalance !== "down" ? "ok" : "degraded";
    const body = JSON.stringify({
      status,
      database: ok ? "up" : "down",
      backend: database.kind,
      rateLimitStore: storeUp ? "up" : "down",
      liveBalance,
    });
    // Content-Length set here, so that HEAD (answered by this route, without the body) says it too.
    res.writeHead(ok && !leaving ? 200 : 503, {
      "content-type": "application/json; charset=utf-8",
      "content-length": Buffer.byteLength(body),
      "x-request-id": requestId,
    });
    res.end(body);
  };
}
