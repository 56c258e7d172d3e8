/**
 * Runs the recovery pass at start and then every RECOVERY_INTERVAL, one pass at a time: the next
 * starts an interval after the previous one started, at once when that one ran longer (a pass whose
 * plan renewals spent their budget with periods still due, grants/maintenance.ts, is followed at once,
 * so a backlog is worked off at full speed while each pass still refunds and expires first). A pass
 * that failed waits a whole interval after it ended (the database may be down). A pass never
 * overlaps itself. The timer is unref'd: it never keeps a process alive.
 *
 * stop() aborts the signal every pass is given, then waits for the running pass, so the database can
 * close after. Long work in a pass (plan renewal, expiry) checks the signal between its transactions,
 * so a stopping server waits for one transaction, not for a backlog (SIGTERM: README, "drains for at
 * most 10 s", then exits).
 */
import type { Logger } from "pino";
import type { RecoveryReport } from "./recovery-pass.js";

export interface RecoveryScheduler {
  /** Runs a pass now (or joins the one running) and resolves to its report; undefined if it failed. */
  runNow(): Promise<RecoveryReport | undefined>;
  /** No pass after this one; the running one is told to end (its signal aborted) and awaited. */
  stop(): Promise<void>;
}

export interface RecoverySchedulerOptions {
  intervalMs: number;
  /** One pass. `signal` is aborted by stop(): work that may run long should end at its next check. */
  runPass: (signal: AbortSignal) => Promise<RecoveryReport>;
  logger: Logger;
}

export function startRecoveryScheduler(options: RecoverySchedulerOptions): RecoveryScheduler {
  const { intervalMs, runPass, logger } = options;
  const stopping = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<RecoveryReport | undefined> | undefined;

  function schedule(delayMs: number): void {
    if (stopping.signal.aborted) return;
    timer = setTimeout(() => void runNow(), delayMs);
    timer.unref();
  }

  function runNow(): Promise<RecoveryReport | undefined> {
    if (running) return running;
    clearTimeout(timer);
    const startedAt = performance.now();
    let failed = false;
    running = runPass(stopping.signal)
      .catch((err: unknown) => {
        // The database may be down; the next pass tries again.
        failed = true;
        logger.error({ event: "recovery.pass_failed", component: "recovery", err }, "recovery pass failed");
        return undefined;
      })
      .finally(() => {
        running = undefined;
        schedule(failed ? intervalMs : Math.max(0, intervalMs - (performance.now() - startedAt)));
      });
    return running;
  }

  schedule(0);
  return {
    runNow,
    async stop() {
      stopping.abort();
      clearTimeout(timer);
      await running;
    },
  };
}
