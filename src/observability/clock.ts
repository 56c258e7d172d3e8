/**
 * Time as the observability code sees it: the current time and one-shot timers. Alert checks run on
 * timers after a charge; tests inject a fake clock and move time on instead of sleeping.
 */
export type TimerHandle = unknown;

export interface Clock {
  /** Milliseconds since the epoch, like Date.now(). */
  now(): number;
  /** Calls `run` once after `ms`. The timer must not keep the process alive. */
  setTimer(run: () => void, ms: number): TimerHandle;
  clearTimer(handle: TimerHandle): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer: (run, ms) => setTimeout(run, ms).unref(),
  clearTimer: (handle) => clearTimeout(handle as NodeJS.Timeout),
};
