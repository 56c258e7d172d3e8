/**
 * Hears the ledger trigger's notifications. PostgreSQL: LISTEN needs a session, so each instance
 * keeps ONE dedicated pg.Client (DATABASE_DIRECT_URL, else DATABASE_URL; never through a
 * transaction-mode pooler) and reconnects with backoff when it drops; after a reconnect it reports
 * `connected(true)`, since notifications sent meanwhile are lost and subscribers must be brought up
 * to date. PGlite: its in-process listen(), which delivers after each commit like NOTIFY.
 */
import pg from "pg";
import type { Logger } from "pino";

export interface ListenerEvents {
  notification(payload: string): void;
  /** The channel is (again) heard; `afterLoss` when notifications may have been missed before it. */
  connected(afterLoss: boolean): void;
  /** The session was lost: nothing is heard until `connected` again. */
  disconnected?(): void;
}

export interface NotificationListener {
  /** Resolves once listening (PostgreSQL: once the first attempt ended; failures keep retrying in the background). */
  start(): Promise<void>;
  close(): Promise<void>;
}

export interface Backoff {
  baseMs: number;
  maxMs: number;
}

const DEFAULT_BACKOFF: Backoff = { baseMs: 100, maxMs: 5_000 };

export function createPostgresListener(
  options: { url: string; channel: string; logger: Logger; backoff?: Backoff },
  events: ListenerEvents,
): NotificationListener {
  const backoff = options.backoff ?? DEFAULT_BACKOFF;
  let client: pg.Client | undefined;
  let closed = false;
  let failures = 0;
  let everConnected = false;
  let retryTimer: NodeJS.Timeout | undefined;

  async function connect(): Promise<void> {
    if (closed) return;
    const attempt = new pg.Client({ connectionString: options.url, connectionTimeoutMillis: 5_000, keepAlive: true });
    attempt.on("notification", (message) => {
      if (message.channel === options.channel && message.payload !== undefined) events.notification(message.payload);
    });
    // A dropped session ('error' then 'end'): listen again on a new one. A pg Client whose connection
    // dies emits 'error', often twice (57P01 from the killed backend, then "Connection terminated
    // unexpectedly" as the socket closes), and Node exits on an 'error' nobody listens to. So this
    // listener is never removed: it covers a failed connect or LISTEN, the session while in use, and
    // the old client after it was lost, until it is ended. The loss of the session in use is logged
    // once; a failed attempt is logged as live.listen_failed below.
    let lost = false;
    attempt.on("error", (err) => {
      if (client !== attempt || lost) return;
      lost = true;
      options.logger.warn({ event: "live.listen_lost", err: { message: err.message } }, "lost the notification session");
    });
    attempt.on("end", () => {
      if (client === attempt) {
        client = undefined;
        events.disconnected?.();
        scheduleReconnect();
      }
    });
    try {
      await attempt.connect();
      await attempt.query(`listen ${options.channel}`);
    } catch (err) {
      attempt.removeAllListeners("end");
      await attempt.end().catch(() => undefined);
      options.logger.warn(
        { event: "live.listen_failed", attempt: failures + 1, err: { message: err instanceof Error ? err.message : String(err) } },
        "could not listen for balance changes; retrying",
      );
      scheduleReconnect();
      return;
    }
    if (closed) {
      await attempt.end().catch(() => undefined);
      return;
    }
    client = attempt;
    const afterLoss = everConnected;
    everConnected = true;
    failures = 0;
    if (afterLoss) options.logger.info({ event: "live.listen_restored" }, "listening for balance changes again");
    events.connected(afterLoss);
  }

  function scheduleReconnect(): void {
    if (closed || retryTimer) return;
    const delay = Math.min(backoff.maxMs, backoff.baseMs * 2 ** failures);
    failures++;
    // Jitter, so many instances that lost the database together do not come back in step.
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      void connect();
    }, delay / 2 + Math.random() * (delay / 2));
    retryTimer.unref();
  }

  return {
    start: connect,
    async close() {
      closed = true;
      clearTimeout(retryTimer);
      const current = client;
      client = undefined;
      await current?.end().catch(() => undefined);
    },
  };
}

export function createInProcessListener(
  listen: (channel: string, onPayload: (payload: string) => void) => Promise<() => Promise<void>>,
  channel: string,
  events: ListenerEvents,
): NotificationListener {
  let stop: (() => Promise<void>) | undefined;
  return {
    async start() {
      stop = await listen(channel, (payload) => events.notification(payload));
      events.connected(false);
    },
    async close() {
      await stop?.().catch(() => undefined);
    },
  };
}
