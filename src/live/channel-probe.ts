/**
 * Proves that the notification session hears what other sessions send. A LISTEN made through a
 * transaction-mode pooler (DATABASE_DIRECT_URL unset while DATABASE_URL is PgBouncer or Supabase's
 * port 6543) succeeds, then hears nothing: the pooler hands the session's server connection to other
 * clients between transactions and drops the notifications it receives meanwhile. Charges work, and
 * every creditBalanceChanged subscriber silently gets no event at all.
 *
 * So each time the session starts listening, the instance sends one probe notification from its pool
 * (another session, as the ledger trigger's relay does) and waits for its own session to hear it. A
 * probe not heard within the timeout is logged at error with what to do, counted, and reported by
 * /health (`"liveBalance": "down"`, status degraded); one heard later, or after the next reconnect,
 * sets it right. A lost session is "down" too, until it is back and its probe heard: one the
 * database dropped, or one gone silent (a network partition), which the listener's periodic check
 * finds (src/live/notification-listener.ts).
 */
import { randomUUID } from "node:crypto";

/** A probe's payload starts with this; a ledger notification is a JSON array (`[`). */
export const PROBE_PREFIX = "probe:";

export type ChannelState = "unknown" | "up" | "down";

export interface ChannelProbeOptions {
  /** Sends `payload` on the channel from a session other than the listener's. */
  send(payload: string): Promise<void>;
  /** The probe was not heard in time (or could not be sent). */
  onUnheard(reason: string): void;
  /** Heard after all, once it had been reported unheard. */
  onRestored(): void;
  timeoutMs?: number;
}

export class ChannelProbe {
  private state: ChannelState = "unknown";
  private expected: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** The last probe was reported unheard: hearing one again is worth saying. */
  private reportedUnheard = false;

  constructor(private readonly options: ChannelProbeOptions) {}

  /** "up" once a probe was heard; "down" while the last one was not; "unknown" before the first. */
  get channelState(): ChannelState {
    return this.state;
  }

  /** Sends a new probe (the listener has just connected). */
  probe(): void {
    const payload = `${PROBE_PREFIX}${randomUUID()}`;
    this.expected = payload;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.unheard("no probe notification arrived"), this.options.timeoutMs ?? 5_000);
    this.timer.unref();
    this.options.send(payload).catch((err: unknown) => this.unheard(`the probe could not be sent: ${err instanceof Error ? err.message : String(err)}`));
  }

  /** The listening session was lost: nothing is heard until it is back and a new probe is heard. */
  lost(): void {
    clearTimeout(this.timer);
    this.expected = undefined;
    this.state = "down";
  }

  /** Takes a notification's payload; true when it was a probe (this instance's or another's), which carries no change. */
  heard(payload: string): boolean {
    if (!payload.startsWith(PROBE_PREFIX)) return false;
    if (payload === this.expected) {
      clearTimeout(this.timer);
      this.expected = undefined;
      if (this.reportedUnheard) this.options.onRestored();
      this.reportedUnheard = false;
      this.state = "up";
    }
    return true;
  }

  close(): void {
    clearTimeout(this.timer);
    this.expected = undefined;
  }

  private unheard(reason: string): void {
    if (this.expected === undefined) return;
    clearTimeout(this.timer);
    this.state = "down";
    this.reportedUnheard = true;
    this.options.onUnheard(reason);
  }
}
