/**
 * Raising an alert: store it (credit_alerts), log it, count it and post it to the webhook. Alerts are
 * raised from the charge path's observers, so raising never throws and never waits: the work runs in
 * the background, and a database failure while storing is logged, not thrown. The service tracks
 * what it has in flight so tests can wait for it and app.close() can finish it.
 *
 * An alert's createdAt is the database's now() when it is stored (alert-time.ts), less how long it
 * waited to be stored. The webhook posts the stored row as the insert returns it, so the post is the
 * alert exactly as creditAlerts returns it (DESIGN.md), createdAt and all: an alert stored late is
 * posted once it is stored. Only an alert that is never stored is posted with this instance's time,
 * the only one there is then.
 */
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import type { Logger } from "pino";
import type { Database } from "../../db/database.js";
import { databaseCause, sqlState } from "../../db/errors.js";
import type { Clock } from "../clock.js";
import type { CreditMetrics } from "../metrics.js";
import type { AlertRecord, NewAlert } from "./alert.js";
import { insertAlert, insertSpikeAlertOncePerWindow } from "./alert-store.js";
import { timesAlertsOnDatabase, type AlertTime } from "./alert-time.js";
import type { WebhookNotifier } from "./webhook-notifier.js";

/** Stores in flight at once; beyond this (a database outage during a failure storm) alerts are only logged. */
const MAX_PENDING_STORES = 1_000;

/**
 * When an alert could not be stored, it is stored again after these waits (about two minutes in
 * all): the failures that raise FAILED_TRANSACTION alerts are often a database outage, and the
 * alert that says so must still be in creditAlerts once the database is back. It is logged at once
 * all the same; its webhook post waits for the stored row (the post is the stored alert), or is sent
 * when the alert is given up.
 */
const STORE_RETRY_DELAYS_MS = [1_000, 2_000, 5_000, 10_000, 30_000, 60_000];

export interface AlertServiceDeps {
  db: Database;
  logger: Logger;
  /** The system clock in production: alert times are then the database's; a test's clock times them itself. */
  clock: Clock;
  metrics?: CreditMetrics;
  webhook?: WebhookNotifier;
}

/** An alert raised on this instance, not stored yet. */
interface RaisedAlert extends NewAlert {
  id: string;
  /** This instance's time (or the test's clock's): announced only when the alert could not be stored. */
  createdAt: Date;
  /** performance.now() when it was raised: how long it waited before it is stored. */
  raisedAtMs: number;
}

export class AlertService {
  private readonly pending = new Set<Promise<unknown>>();
  /** Alerts waiting to be stored again, by id: the alert and its next attempt's timer. */
  private readonly storeRetries = new Map<string, { candidate: RaisedAlert; timer: NodeJS.Timeout }>();
  private readonly log: Logger;
  private readonly onDatabaseTime: boolean;
  private closed = false;

  constructor(private readonly deps: AlertServiceDeps) {
    this.log = deps.logger.child({ component: "alerts" });
    this.onDatabaseTime = timesAlertsOnDatabase(deps.clock);
  }

  /** Fire and forget: stores, logs and posts the alert in the background. */
  raise(alert: NewAlert): void {
    const candidate = this.candidate(alert);
    if (this.pending.size >= MAX_PENDING_STORES) {
      // A database outage during a failure storm: keep memory bounded, still log and post the alert.
      this.announce(candidate, false);
      return;
    }
    this.track(async () => {
      const stored = await this.store(candidate, () => insertAlert(this.deps.db, candidate, this.storedTime(candidate)));
      if (stored !== undefined) return this.announce(stored, true);
      // Logged now; posted once stored, as stored: posting it now would carry this instance's time
      // and details as raised, not the row creditAlerts will return.
      this.record(candidate, false);
      this.storeLater(candidate, 0);
    });
  }

  /** Alerts not stored yet, waiting for their next attempt (for tests and close()). */
  get waitingToBeStored(): number {
    return this.storeRetries.size;
  }

  /**
   * Tries to store an alert again after the `attempt`-th wait; the insert is idempotent by the
   * alert's id (a first attempt that committed but lost its answer is found, not stored twice). The
   * stored row is posted. Bounded like the stores in flight, and given up at close(); an alert given
   * up is posted as it was raised.
   */
  private storeLater(candidate: RaisedAlert, attempt: number): void {
    const delay = STORE_RETRY_DELAYS_MS[attempt];
    if (this.closed || delay === undefined || this.storeRetries.size >= MAX_PENDING_STORES) {
      this.log.error({ event: "alerts.store_abandoned", alertId: candidate.id, kind: candidate.kind, subscriptionId: candidate.subscriptionId, attempts: attempt + 1 }, "alert never stored: it was logged, and is posted with this instance's time");
      this.post(candidate);
      return;
    }
    const timer = setTimeout(() => {
      this.storeRetries.delete(candidate.id);
      this.track(async () => {
        let stored: AlertRecord;
        try {
          stored = await insertAlert(this.deps.db, candidate, this.storedTime(candidate));
        } catch {
          return this.storeLater(candidate, attempt + 1);
        }
        this.log.info({ event: "alerts.stored_late", alertId: candidate.id, kind: candidate.kind, subscriptionId: candidate.subscriptionId, attempts: attempt + 2 }, "alert stored after the database came back");
        this.post(stored);
      });
    }, delay);
    timer.unref();
    this.storeRetries.set(candidate.id, { candidate, timer });
  }

  /**
   * Stores a USAGE_SPIKE alert unless the subscription already has one in the `windowMs` before it
   * (on the database's clock), then logs and posts it. Resolves to the stored alert; undefined when
   * one of this window already existed (nothing is logged or posted then) or when storing failed (the
   * alert is still logged and posted).
   */
  async raiseSpikeOncePerWindow(alert: NewAlert & { subscriptionId: string }, windowMs: number): Promise<AlertRecord | undefined> {
    const candidate = { ...this.candidate(alert), subscriptionId: alert.subscriptionId };
    let duplicate = false;
    const stored = await this.store(candidate, async () => {
      const inserted = await insertSpikeAlertOncePerWindow(this.deps.db, candidate, this.storedTime(candidate), windowMs);
      duplicate = inserted === undefined;
      return inserted;
    });
    if (!duplicate) this.announce(stored ?? candidate, stored !== undefined);
    return stored;
  }

  /** Logs, counts and posts an alert already stored elsewhere (the ledger trigger's balance alerts, drizzle/0004). */
  announceStored(alert: AlertRecord): void {
    this.announce(alert, true);
  }

  /** Runs background work and keeps track of it until it settles; its failure is logged. */
  track(work: () => Promise<unknown>): void {
    const task: Promise<unknown> = work()
      .catch((err) => this.log.error({ err: { type: errorName(err), cause: databaseCause(err) } }, "background alert work failed"))
      .finally(() => this.pending.delete(task));
    this.pending.add(task);
  }

  /** Resolves once everything raised so far is stored (or failed to be). Webhook posts may still be retrying. */
  async flush(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  /**
   * Finishes stores in flight, gives up the ones waiting to be retried (posting them as raised), then
   * gives webhook deliveries a moment and stops them.
   */
  async close(webhookGraceMs?: number): Promise<void> {
    this.closed = true;
    const abandoned = [...this.storeRetries.values()];
    this.storeRetries.clear();
    for (const { timer } of abandoned) clearTimeout(timer);
    if (abandoned.length > 0) {
      this.log.error(
        { event: "alerts.store_abandoned", alerts: abandoned.map(({ candidate }) => candidate.id) },
        "shutting down with alerts never stored: they were logged, and are posted with this instance's time",
      );
      for (const { candidate } of abandoned) this.post(candidate);
    }
    await this.flush();
    await this.deps.webhook?.close(webhookGraceMs);
  }

  private candidate(alert: NewAlert): RaisedAlert {
    return { ...alert, id: randomUUID(), createdAt: new Date(this.deps.clock.now()), raisedAtMs: performance.now() };
  }

  /** The time an alert is stored with: the database's now() less how long it waited (or the test clock's time). */
  private storedTime(candidate: RaisedAlert): AlertTime {
    if (!this.onDatabaseTime) return { at: candidate.createdAt };
    return { databaseNowLessMs: performance.now() - candidate.raisedAtMs };
  }

  /** Runs the insert; a failure is logged (never thrown: alerts are best-effort) and gives undefined. */
  private async store(candidate: NewAlert, insert: () => Promise<AlertRecord | undefined>): Promise<AlertRecord | undefined> {
    try {
      return await insert();
    } catch (err) {
      this.log.error(
        { event: "alerts.store_failed", kind: candidate.kind, subscriptionId: candidate.subscriptionId, err: { type: errorName(err), sqlState: sqlState(err), cause: databaseCause(err) } },
        "could not store an alert; it is logged now, stored again later and posted once stored",
      );
      return undefined;
    }
  }

  /** The alert's log line, metric and webhook post. */
  private announce(alert: NewAlert & { id: string; createdAt: Date }, stored: boolean): void {
    this.record(alert, stored);
    this.post(alert);
  }

  /** The alert's log line and metric: once per alert, as soon as it is raised. */
  private record(alert: NewAlert & { id: string }, stored: boolean): void {
    this.deps.metrics?.alerts.inc({ kind: alert.kind });
    this.log.warn(
      { event: "credits.alert", alertId: alert.id, kind: alert.kind, subscriptionId: alert.subscriptionId, details: alert.details, stored },
      alert.message,
    );
  }

  /**
   * The webhook post: the alert as creditAlerts returns it (DESIGN.md), so the stored row whenever
   * there is one, with the database's createdAt and jsonb's order of the details' keys.
   */
  private post(alert: NewAlert & { id: string; createdAt: Date }): void {
    this.deps.webhook?.send({
      id: alert.id,
      kind: alert.kind,
      subscriptionId: alert.subscriptionId,
      message: alert.message,
      details: alert.details,
      createdAt: alert.createdAt.toISOString(),
    });
  }
}

function errorName(err: unknown): string {
  return err instanceof Error ? err.name : typeof err;
}
