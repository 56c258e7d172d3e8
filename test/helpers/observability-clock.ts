/** A clock tests move by hand: timers fire only when `advance` passes their time, in time order. */
import type { Clock, TimerHandle } from "../../src/observability/clock.js";

export class FakeClock implements Clock {
  private nextId = 1;
  private readonly timers = new Map<number, { at: number; run: () => void }>();

  constructor(private time: number = Date.now()) {}

  now(): number {
    return this.time;
  }

  setTimer(run: () => void, ms: number): TimerHandle {
    const id = this.nextId++;
    this.timers.set(id, { at: this.time + ms, run });
    return id;
  }

  clearTimer(handle: TimerHandle): void {
    this.timers.delete(handle as number);
  }

  /** Timers not yet fired. */
  get pendingTimers(): number {
    return this.timers.size;
  }

  /** Moves time on by `ms`, firing every timer that falls due (including ones set by fired timers). */
  advance(ms: number): void {
    const target = this.time + ms;
    for (;;) {
      const due = [...this.timers.entries()].filter(([, t]) => t.at <= target).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.time = Math.max(this.time, due[1].at);
      due[1].run();
    }
    this.time = target;
  }
}
