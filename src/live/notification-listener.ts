/**
 * Hears the ledger trigger's notifications. PostgreSQL: LISTEN needs a session, so each instance
 * keeps ONE dedicated pg.Client (DATABASE_DIRECT_URL, else DATABASE_URL; never through a
 * transaction-mode pooler) and reconnects with backoff when it drops; after a reconnect it reports
 * `connected(true)`, since notifications sent meanwhile are lost and subscribers must be brought up
 * to date. A session that stops answering (a silent network partition: nothing fails, nothing is
 * heard) is found by a periodic check and replaced the same way. PGlite: its in-process listen(),
 * which delivers after each commit like NOTIFY.
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

/** How often the session in use is checked, and how long it may take to answer. */
export interface SessionCheck {
  /** From the end of one check to the start of the next. */
  intervalMs: number;
  /** Longer without an answer and the session is taken as lost. */
  timeoutMs: number;
}

const DEFAULT_BACKOFF: Backoff = { baseMs: 100, maxMs: 5_000 };

/**
 * A LISTEN session only receives, so when the network to the database goes silent (packets dropped,
 * no RST or FIN: a partition, an expired NAT or firewall entry, a vanished host) nothing on it fails:
 * it stays "connected" and hears nothing, for hours with the kernel's default keepalive (2 h), while
 * /health says up and subscribers get no events. So every 15 s the session is asked to answer one
 * statement (a round trip on an idle connection: negligible for the database), and one not answered
 * within 5 s (an idle session answers in milliseconds; a busy database gets ample time) has it
 * treated as lost: a silent session is noticed within ~20 s. Asked on the session itself rather
 * than by a probe NOTIFY sent through the pool: a pool busy or cut off would then be taken for a
 * lost session, and every probe would reach every instance. The 5 s also bounds the LISTEN of a new
 * session and a graceful end at close.
 */
const DEFAULT_SESSION_CHECK: SessionCheck = { intervalMs: 15_000, timeoutMs: 5_000 };

/**
 * TCP keepalive probes start after 10 s of silence instead of the kernel's 2 h: a NAT or firewall
 * does not expire the quiet session, and the kernel itself notices a peer that is gone. Only a
 * backstop (how long the kernel then probes is its setting, minutes by default): the session check
 * is what bounds how long a silent session goes unnoticed.
 */
const KEEPALIVE_DELAY_MS = 10_000;

export function createPostgresListener(
  options: { url: string; channel: string; logger: Logger; backoff?: Backoff; check?: SessionCheck | undefined },
  events: ListenerEvents,
): NotificationListener {
  const backoff = options.backoff ?? DEFAULT_BACKOFF;
  const check = options.check ?? DEFAULT_SESSION_CHECK;
  // Also the check's statement: LISTEN on a channel the session already listens on does nothing, and
  // the session keeps showing as `listen …` in pg_stat_activity (what operators and tests look for).
  const listenStatement = `listen ${options.channel}`;
  let client: pg.Client | undefined;
  let closed = false;
  let failures = 0;
  let everConnected = false;
  let retryTimer: NodeJS.Timeout | undefined;
  let checkTimer: NodeJS.Timeout | undefined;

  async function connect(): Promise<void> {
    if (closed) return;
    const attempt = new pg.Client({
      connectionString: options.url,
      connectionTimeoutMillis: 5_000,
      keepAlive: true,
      keepAliveInitialDelayMillis: KEEPALIVE_DELAY_MS,
    });
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
      await answeredWithin(attempt.query(listenStatement), check.timeoutMs, "LISTEN");
    } catch (err) {
      attempt.removeAllListeners("end");
      // Destroyed, not ended: a graceful end waits for the database, which a silent connection never
      // answers, and this retry loop would wait with it.
      destroySession(attempt);
      options.logger.warn(
        { event: "live.listen_failed", attempt: failures + 1, err: { message: err instanceof Error ? err.message : String(err) } },
        "could not listen for balance changes; retrying",
      );
      scheduleReconnect();
      return;
    }
    if (closed) {
      await endSession(attempt);
      return;
    }
    client = attempt;
    const afterLoss = everConnected;
    everConnected = true;
    failures = 0;
    if (afterLoss) options.logger.info({ event: "live.listen_restored" }, "listening for balance changes again");
    events.connected(afterLoss);
    scheduleCheck(attempt);
  }

  function scheduleCheck(session: pg.Client): void {
    checkTimer = setTimeout(() => void checkSession(session), check.intervalMs);
    checkTimer.unref();
  }

  /**
   * The session answers within the timeout, or it is destroyed: its 'error' logs live.listen_lost
   * with why, and its 'end' reports `disconnected` (/health: "down" at once) and reconnects, as for a
   * session the database dropped. Destroyed, not ended: it is silent, a graceful end would hang too.
   */
  async function checkSession(session: pg.Client): Promise<void> {
    checkTimer = undefined;
    try {
      await answeredWithin(session.query(listenStatement), check.timeoutMs, "the notification session's check");
    } catch (err) {
      // Already lost (its 'end' is reconnecting) or closed meanwhile: nothing more to do.
      if (client !== session) return;
      destroySession(session, err instanceof Error ? err : new Error(String(err)));
      return;
    }
    if (client === session && !closed) scheduleCheck(session);
  }

  /** Ends a session gracefully if the database answers within the check's timeout, else destroys it. */
  async function endSession(session: pg.Client): Promise<void> {
    await answeredWithin(session.end(), check.timeoutMs, "closing the notification session").catch(() => destroySession(session));
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
      clearTimeout(checkTimer);
      const current = client;
      client = undefined;
      if (current) await endSession(current);
    },
  };
}

/** `work`'s outcome, or a rejection once `ms` passed without one (what it does later is ignored). */
function answeredWithin<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} got no answer within ${ms} ms`)), ms);
    timer.unref();
    work.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

/**
 * Closes a session's socket at once, without a word to the database (pg.Client has no destroy()).
 * Its client then fails what is pending and emits 'error' (with `reason`, when given) and 'end'.
 */
function destroySession(session: pg.Client, reason?: Error): void {
  session.connection.stream.destroy(reason);
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
