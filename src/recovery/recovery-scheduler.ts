/**
 * Runs the recovery pass at start and then every RECOVERY_INTERVAL, one pass at a time (the next is
 * scheduled when the previous finishes, so a slow pass never overlaps itself). The timer is unref'd:
 * it never keeps a process alive. stop() waits for a running pass, so the database can close after.
 */
import type { Logger } from "pino";
import type { RecoveryReport } from "./recovery-pass.js";

export interface RecoveryScheduler {
  /** Runs a pass now (or joins the one running) and resolves to its report; undefined if it failed. */
  runNow(): Promise<RecoveryReport | undefined>;
  stop(): Promise<void>;
}

export interface RecoverySchedulerOptions {
  intervalMs: number;
  runPass: () => Promise<RecoveryReport>;
  logger: Logger;
}

export function startRecoveryScheduler(options: RecoverySchedulerOptions): RecoveryScheduler {
  const { intervalMs, runPass, logger } = options;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<RecoveryReport | undefined> | undefined;
  let stopped = false;

  function schedule(delayMs: number): void {
    if (stopped) return;
    timer = setTimeout(() => void runNow(), delayMs);
    timer.unref();
  }

  function runNow(): Promise<RecoveryReport | undefined> {
    if (running) return running;
    clearTimeout(timer);
    running = runPass()
      .catch((err: unknown) => {
        // The database may be down; the next pass tries again.
        logger.error({ event: "recovery.pass_failed", component: "recovery", err }, "recovery pass failed");
        return undefined;
      })
      .finally(() => {
        running = undefined;
        schedule(intervalMs);
      });
    return running;
  }

  schedule(0);
  return {
    runNow,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
