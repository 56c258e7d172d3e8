/**
 * USAGE_SPIKE detection, kept off the charge path: a `charged` event only schedules a check of that
 * subscription on the clock, `checkDelayMs` later. Charges arriving before the check runs join it
 * (one check, however many charges), and charges arriving while it runs schedule one more, so a hot
 * subscription is checked at most once per `checkDelayMs` per instance. After a spike alert the
 * subscription is left alone for the rest of its window.
 *
 * "At most one alert per subscription per window" is enforced in the database (see
 * insertSpikeAlertOncePerWindow), so it holds across instances and restarts too. The windows are
 * measured on the database's clock, the one the ledger's entries and the alerts are stamped with
 * (alert-time.ts): instances whose own clocks disagree still agree on the window. How long a
 * subscription is left alone after an alert is this instance's own business, timed on its clock.
 */
import type { Logger } from "pino";
import type { Database } from "../../db/database.js";
import type { Clock, TimerHandle } from "../clock.js";
import type { AlertRecord } from "./alert.js";
import type { AlertService } from "./alert-service.js";
import { databaseNowMs, timesAlertsOnDatabase } from "./alert-time.js";
import { SlidingUsageWindows } from "./sliding-usage-windows.js";
import { isUsageSpike } from "./usage-window.js";
import { databaseCause } from "../../db/errors.js";

export interface SpikeSettings {
  windowMs: number;
  baselineMs: number;
  factor: number;
  minCredits: number;
  /** Delay between a charge and the check it schedules; default a tenth of the window, 1–30 s. */
  checkDelayMs?: number;
}

/** Subscriptions tracked at once (scheduled, or quiet after an alert); bounds memory with many subscriptions. */
const MAX_TRACKED = 10_000;
/**
 * Checks reading the database at once, per instance; the others wait their turn here. Subscriptions
 * charged together are checked together, a delay later: in the benchmark a thousand checks fell due
 * in the same few milliseconds and, each taking a pool connection, held the charge path's holds and
 * settlements back for about a second (metered throughput fell by a fifth in that run).
 */
export const MAX_CHECKS_RUNNING = 2;

interface ScheduledCheck {
  timer?: TimerHandle;
  running: boolean;
  /** A charge arrived while the check ran: check again. */
  again: boolean;
}

export class SpikeDetector {
  private readonly scheduled = new Map<string, ScheduledCheck>();
  /** Subscriptions alerted recently, with the time their window ends. */
  private readonly quietUntil = new Map<string, number>();
  /** Checks due while MAX_CHECKS_RUNNING others run, in the order they fell due. */
  private readonly waitingTurn: (() => void)[] = [];
  private checksRunning = 0;
  private readonly checkDelayMs: number;
  /** Each checked subscription's window sums, moved forward by every check (sliding-usage-windows.ts). */
  private readonly usage: SlidingUsageWindows;
  /** Windows measured on the database's clock (production), or on the clock a test injected. */
  private readonly onDatabaseTime: boolean;
  private closed = false;

  constructor(
    private readonly deps: { db: Database; clock: Clock; alerts: AlertService; logger: Logger; settings: SpikeSettings },
  ) {
    const { windowMs, checkDelayMs } = deps.settings;
    this.checkDelayMs = checkDelayMs ?? Math.min(30_000, Math.max(1_000, Math.round(windowMs / 10)));
    this.usage = new SlidingUsageWindows(deps.db, deps.settings);
    this.onDatabaseTime = timesAlertsOnDatabase(deps.clock);
  }

  /** Called for every charge; returns at once. */
  noteCharge(subscriptionId: string): void {
    if (this.closed) return;
    const quiet = this.quietUntil.get(subscriptionId);
    if (quiet !== undefined) {
      if (quiet > this.deps.clock.now()) return;
      this.quietUntil.delete(subscriptionId);
    }
    const existing = this.scheduled.get(subscriptionId);
    if (existing) {
      if (existing.running) existing.again = true;
      return;
    }
    if (this.scheduled.size >= MAX_TRACKED) return; // overloaded: skip rather than grow without bound
    this.schedule(subscriptionId);
  }

  /** Checks scheduled or running (for tests and shutdown). */
  get pendingChecks(): number {
    return this.scheduled.size;
  }

  /** Cancels scheduled checks; checks already running finish (the alert service tracks them). */
  close(): void {
    this.closed = true;
    for (const check of this.scheduled.values()) {
      if (check.timer !== undefined) this.deps.clock.clearTimer(check.timer);
    }
    this.scheduled.clear();
    this.waitingTurn.length = 0;
  }

  /** Checks one subscription now: raises and returns a USAGE_SPIKE alert when its usage is a spike. */
  async check(subscriptionId: string): Promise<AlertRecord | undefined> {
    const { windowMs, baselineMs, factor, minCredits } = this.deps.settings;
    const usage = await this.usage.read(subscriptionId, await this.windowsNow());
    if (!isUsageSpike(usage, { factor, minCredits })) return undefined;

    this.rememberQuiet(subscriptionId, this.deps.clock.now() + windowMs);
    const average = usage.baselineAveragePerWindow;
    const window = formatDuration(windowMs);
    return this.deps.alerts.raiseSpikeOncePerWindow(
      {
        kind: "USAGE_SPIKE",
        subscriptionId,
        message:
          `Usage spike on subscription ${subscriptionId}: ${usage.recentCredits} credits in the last ${window}, ` +
          `over ${factor}× its ${formatDuration(baselineMs)} average of ${round(average)} per ${window}`,
        details: {
          recentCredits: usage.recentCredits,
          baselineCredits: usage.baselineCredits,
          baselineAveragePerWindow: round(average),
          factor,
          minCredits,
          windowSeconds: windowMs / 1000,
          baselineSeconds: baselineMs / 1000,
        },
      },
      windowMs,
    );
  }

  /** "Now" of the usage windows: the database's, or the injected clock's. */
  private async windowsNow(): Promise<number> {
    return this.onDatabaseTime ? databaseNowMs(this.deps.db) : this.deps.clock.now();
  }

  private schedule(subscriptionId: string): void {
    const check: ScheduledCheck = { running: false, again: false };
    check.timer = this.deps.clock.setTimer(() => this.run(subscriptionId, check), this.checkDelayMs);
    this.scheduled.set(subscriptionId, check);
  }

  private run(subscriptionId: string, check: ScheduledCheck): void {
    check.timer = undefined;
    check.running = true;
    if (this.checksRunning < MAX_CHECKS_RUNNING) this.start(subscriptionId, check);
    else this.waitingTurn.push(() => this.start(subscriptionId, check));
  }

  private start(subscriptionId: string, check: ScheduledCheck): void {
    this.checksRunning++;
    this.deps.alerts.track(async () => {
      try {
        await this.check(subscriptionId);
      } catch (err) {
        this.deps.logger.warn(
          { event: "alerts.spike_check_failed", subscriptionId, err: { type: err instanceof Error ? err.name : typeof err, cause: databaseCause(err) } },
          "usage spike check failed",
        );
      } finally {
        this.checksRunning--;
        if (this.scheduled.get(subscriptionId) === check) this.scheduled.delete(subscriptionId);
        if (check.again) this.noteCharge(subscriptionId);
        this.waitingTurn.shift()?.();
      }
    });
  }

  private rememberQuiet(subscriptionId: string, until: number): void {
    if (this.quietUntil.size >= MAX_TRACKED) {
      const oldest = this.quietUntil.keys().next().value;
      if (oldest !== undefined) this.quietUntil.delete(oldest);
    }
    this.quietUntil.set(subscriptionId, until);
  }
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}

/** 300000 → "5m", 86400000 → "24h": how the settings are written. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [["h", 3_600_000], ["m", 60_000], ["s", 1_000]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
