/**
 * Live balance for one app instance: relays the ledger trigger's outbox to NOTIFY, hears the
 * notifications (PostgreSQL LISTEN on a dedicated session, or PGlite in process), feeds the hub that pushes creditBalanceChanged events,
 * brings subscribers up to date after the channel was lost, loads the full entry behind an event
 * when a client asks for more than the notification carries, and has each balance alert the trigger
 * stored logged and posted once (claimed by one instance).
 */
import DataLoader from "dataloader";
import { sql } from "drizzle-orm";
import { LRUCache } from "lru-cache";
import { Counter, Gauge, type Registry } from "prom-client";
import type { Logger } from "pino";
import type { DatabaseHandle } from "../db/database.js";
import type { LedgerEntryRecord } from "../ledger/entry.js";
import { drawsOfEntries, type GrantDrawRecord } from "../grants/grant-store.js";
import type { AlertService } from "../observability/alerts/alert-service.js";
import { BALANCE_CHANNEL, parseBalanceNotification, type EntryRef } from "./balance-change.js";
import { BalanceHub, type BalanceEvent } from "./balance-hub.js";
import { ChannelProbe, type ChannelState } from "./channel-probe.js";
import { DatabaseClock } from "./database-clock.js";
import { claimUnannouncedAlerts, currentBalances, ledgerEntriesByIds } from "./live-store.js";
import { createInProcessListener, createPostgresListener, type NotificationListener, type SessionCheck } from "./notification-listener.js";
import { startNotificationRelay, type NotificationRelay } from "./notification-relay.js";

export interface LiveBalanceOptions {
  database: DatabaseHandle;
  /** LISTEN session URL (DATABASE_DIRECT_URL, else the pool's own); PostgreSQL only. */
  directUrl?: string;
  pushIntervalMs: number;
  logger: Logger;
  alerts?: AlertService;
  registry?: Registry;
  /** Events one subscriber may have waiting before it is dropped as too slow. */
  maxQueuedPerSubscriber?: number;
  /** How often the LISTEN session is checked, and how long it may take to answer (default: every 15 s, 5 s). */
  listenCheck?: SessionCheck;
}

export interface LiveBalance {
  subscribe(subscriptionId: string, types: readonly string[] | undefined): AsyncIterableIterator<BalanceEvent>;
  /** The full ledger entry behind an event (batched and cached: one read however many subscribers ask). */
  entry(ref: EntryRef): Promise<LedgerEntryRecord | undefined>;
  /**
   * The grants an event's entry drew from or gave back to, shared the same way: a request's own
   * loaders would read them once per subscriber, and keep every event's for as long as it runs.
   */
  draws(ref: { subscriptionId: string; entryId: string }): Promise<GrantDrawRecord[]>;
  readonly subscriberCount: number;
  /** Counts a socket closed for not reading its events. */
  slowConsumerDropped(): void;
  /** Whether the notification session hears notifications ("down": subscribers get no events; src/live/channel-probe.ts). */
  readonly channelState: ChannelState;
  start(): Promise<void>;
  close(): Promise<void>;
}

/** Balance alerts claimed per query; more are claimed in further rounds. */
const CLAIM_BATCH = 100;
/**
 * How often each instance moves the ledger trigger's outbox to NOTIFY: what it adds to a push's
 * latency (half of it on average), well inside the 100 ms budget from commit to client. Changes that
 * arrive in one tick fold into one event: at 50 ms a call's hold and settlement fold more often than
 * at 25 ms (1.33 events per metered call against 1.55 in the bench), and each event is a socket write
 * per subscriber (docs/live-balance.md).
 */
const RELAY_INTERVAL_MS = 50;

export function createLiveBalance(options: LiveBalanceOptions): LiveBalance {
  const log = options.logger.child({ component: "live" });
  const registers = options.registry ? [options.registry] : [];
  const subscribersGauge = new Gauge({ name: "live_balance_subscribers", help: "creditBalanceChanged subscriptions open on this instance.", registers });
  const slowDrops = new Counter({ name: "live_balance_slow_consumers_total", help: "Live-balance sockets dropped for not reading their events (once per socket, however many subscriptions it had).", registers });
  const badNotifications = new Counter({ name: "live_balance_bad_notifications_total", help: "Balance notifications that could not be read.", registers });
  const unheardProbes = new Counter({
    name: "live_balance_unheard_probes_total",
    help: "Probe notifications the notification session did not hear (a LISTEN through a transaction-mode pooler hears nothing).",
    registers,
  });

  // The hub spaces events by the database's clock; the relay reads it every tick.
  const clock = new DatabaseClock();
  const hub = new BalanceHub({
    pushIntervalMs: options.pushIntervalMs,
    clock,
    maxQueuedPerSubscriber: options.maxQueuedPerSubscriber ?? 100,
    onSubscribersChanged: (count) => subscribersGauge.set(count),
  });
  const db = options.database.db;
  const entries = new DataLoader<EntryRef, LedgerEntryRecord | undefined, string>(
    async (refs) => {
      const rows = await ledgerEntriesByIds(db, refs);
      const byId = new Map(rows.map((r) => [r.id, r]));
      return refs.map((ref) => byId.get(ref.id));
    },
    { cacheKeyFn: (ref) => ref.id, cacheMap: new LRUCache<string, Promise<LedgerEntryRecord | undefined>>({ max: 2_000 }) },
  );

  const draws = new DataLoader<{ subscriptionId: string; entryId: string }, GrantDrawRecord[], string>(
    async (refs) => {
      const byId = await drawsOfEntries(db, refs);
      return refs.map((ref) => byId.get(ref.entryId) ?? []);
    },
    { cacheKeyFn: (ref) => ref.entryId, cacheMap: new LRUCache<string, Promise<GrantDrawRecord[]>>({ max: 2_000 }) },
  );

  let closed = false;
  let relay: NotificationRelay | undefined;
  let claiming: Promise<void> | undefined;
  let claimAgain = false;

  /** Claims and announces stored balance alerts until none is left; one round at a time per instance. */
  function announceAlerts(): void {
    if (!options.alerts || closed) return;
    if (claiming) {
      claimAgain = true;
      return;
    }
    const alerts = options.alerts;
    claiming = (async () => {
      do {
        claimAgain = false;
        let claimed;
        do {
          claimed = await claimUnannouncedAlerts(db, CLAIM_BATCH);
          for (const alert of claimed) alerts.announceStored(alert);
        } while (claimed.length === CLAIM_BATCH && !closed);
      } while (claimAgain && !closed);
    })()
      .catch((err) => log.error({ event: "live.alert_claim_failed", err: { message: err instanceof Error ? err.message : String(err) } }, "could not claim balance alerts"))
      .finally(() => {
        claiming = undefined;
      });
  }

  // PostgreSQL only: PGlite's listen() is in process and cannot miss what its own database sends.
  const probe = options.database.listen
    ? undefined
    : new ChannelProbe({
        send: async (payload) => {
          await db.execute(sql`select pg_notify(${BALANCE_CHANNEL}, ${payload})`);
        },
        onUnheard: (reason) => {
          unheardProbes.inc();
          log.error(
            { event: "live.notifications_unheard", reason },
            "the live-balance session hears no notifications, so creditBalanceChanged subscribers get no events: " +
              "if DATABASE_DIRECT_URL (or, unset, DATABASE_URL) is a transaction-mode pooler, point DATABASE_DIRECT_URL at a direct connection",
          );
        },
        onRestored: () => log.info({ event: "live.notifications_heard" }, "the live-balance session hears notifications again"),
      });

  function onNotification(payload: string): void {
    if (probe?.heard(payload)) return;
    let changes;
    try {
      changes = parseBalanceNotification(payload);
    } catch {
      badNotifications.inc();
      log.warn({ event: "live.bad_notification", bytes: payload.length }, "a balance notification was not JSON");
      return;
    }
    if (changes.some((c) => c.crossing !== null)) announceAlerts();
    hub.accept(changes);
  }

  async function onConnected(afterLoss: boolean): Promise<void> {
    probe?.probe();
    // Alerts stored while no instance was listening are announced now.
    announceAlerts();
    if (!afterLoss) return;
    try {
      hub.resync(await currentBalances(db, hub.subscribedIds()));
    } catch (err) {
      log.error({ event: "live.resync_failed", err: { message: err instanceof Error ? err.message : String(err) } }, "could not resend current balances");
    }
  }

  const events = {
    notification: onNotification,
    connected: (afterLoss: boolean) => void onConnected(afterLoss),
    disconnected: () => probe?.lost(),
  };
  const listener: NotificationListener = options.database.listen
    ? createInProcessListener(options.database.listen.bind(options.database), BALANCE_CHANNEL, events)
    : createPostgresListener({ url: requireUrl(options), channel: BALANCE_CHANNEL, logger: log, check: options.listenCheck }, events);

  return {
    subscribe: (subscriptionId, types) => hub.subscribe(subscriptionId, types),
    entry: (ref) => entries.load(ref),
    draws: (ref) => draws.load(ref),
    get subscriberCount() {
      return hub.subscriberCount;
    },
    slowConsumerDropped: () => slowDrops.inc(),
    get channelState(): ChannelState {
      return probe ? probe.channelState : "up";
    },
    async start() {
      await listener.start();
      relay = startNotificationRelay({ db, intervalMs: RELAY_INTERVAL_MS, logger: log, clock });
    },
    async close() {
      closed = true;
      probe?.close();
      await relay?.stop();
      hub.close();
      await listener.close();
      await claiming;
    },
  };
}

function requireUrl(options: LiveBalanceOptions): string {
  const url = options.directUrl ?? options.database.url;
  if (!url) throw new Error("live balance needs DATABASE_DIRECT_URL or DATABASE_URL to listen on PostgreSQL");
  return url;
}
