/**
 * Fans balance changes out to this instance's creditBalanceChanged subscribers. Changes arrive from
 * the notification listener (every committed ledger statement, on whichever instance it ran); only
 * balances someone here subscribes to are kept.
 *
 * Coalescing is a leading-edge throttle on the entries' time (their `createdAt`, stamped by
 * the database): a change whose entry is at least the push interval newer than the last one pushed
 * for its balance goes out at once; changes closer together than that wait, folded into one event
 * (the latest balance and entry, the number of entries folded in, the last threshold crossing among
 * them), until the interval after the last pushed entry has passed on the database's clock. Measured
 * on the entries' time rather than on when this instance pushed, a folded change waits only for what is
 * left of the interval since the entry before it was made, not for the whole interval again after
 * that entry's delivery: a call's hold and, some ms later, its settlement reach the client within the
 * interval of the settlement's commit. Changes that arrive together (one read of the notification
 * session) are folded before anything is pushed, so they make one event.
 */
import type { BalanceChange, EntryRef, ThresholdCrossingValue } from "./balance-change.js";
import { balanceKey } from "./balance-change.js";
import { DatabaseClock } from "./database-clock.js";
import { SubscriberQueue } from "./subscriber-queue.js";

export interface BalanceEvent {
  subscriptionId: string;
  type: string;
  balance: number;
  entries: number;
  lastEntry: EntryRef;
  threshold: ThresholdCrossingValue | null;
}

export interface HubOptions {
  pushIntervalMs: number;
  /** Events one subscriber may have waiting before it is dropped as too slow. */
  maxQueuedPerSubscriber: number;
  /** The database's clock, also set by the relay's readings (default: one fed by the changes alone). */
  clock?: DatabaseClock;
  onSubscribersChanged?: (count: number) => void;
}

interface Subscriber {
  subscriptionId: string;
  /** Credit types wanted; undefined: all. */
  types: ReadonlySet<string> | undefined;
  queue: SubscriberQueue<BalanceEvent>;
}

interface BalanceSlot {
  /**
   * Database time the last pushed event stands for: its newest entry's createdAt, or, for an event
   * held back, the end of the interval it waited for. The next event is due an interval later.
   */
  pushedAt: number;
  /** Highest ledger seq already folded into an event: older news (a resync racing a notification) is dropped. */
  lastSeq: number;
  pending: BalanceEvent | undefined;
  timer: NodeJS.Timeout | undefined;
  /** Waiting for the end of the current batch of changes to be pushed or timed. */
  queued: boolean;
}

export class BalanceHub {
  private readonly bySubscription = new Map<string, Set<Subscriber>>();
  private readonly slots = new Map<string, BalanceSlot>();
  private count = 0;
  private readonly clock: DatabaseClock;
  /** Balances with changes folded in the current batch, pushed or timed once it ends. */
  private readonly batch: BalanceSlot[] = [];

  constructor(private readonly options: HubOptions) {
    this.clock = options.clock ?? new DatabaseClock();
  }

  get subscriberCount(): number {
    return this.count;
  }

  /** Subscription ids someone here follows. */
  subscribedIds(): string[] {
    return [...this.bySubscription.keys()];
  }

  subscribe(subscriptionId: string, types: readonly string[] | undefined): AsyncIterableIterator<BalanceEvent> {
    const subscriber: Subscriber = {
      subscriptionId,
      types: types && types.length > 0 ? new Set(types) : undefined,
      queue: new SubscriberQueue<BalanceEvent>(this.options.maxQueuedPerSubscriber, () => this.remove(subscriber)),
    };
    let set = this.bySubscription.get(subscriptionId);
    if (!set) this.bySubscription.set(subscriptionId, (set = new Set()));
    set.add(subscriber);
    this.count++;
    this.options.onSubscribersChanged?.(this.count);
    return subscriber.queue;
  }

  /**
   * Takes the changes of one notification. They are pushed (or timed) at the end of the current
   * task, so the notifications of one read fold together.
   */
  accept(changes: readonly BalanceChange[]): void {
    for (const change of changes) {
      this.clock.observe(change.lastEntry.createdAt.getTime());
      if (!this.bySubscription.has(change.subscriptionId)) continue;
      this.fold(change);
    }
  }

  /**
   * Pushes the current state of balances at once, bypassing coalescing: after the notification
   * channel was lost, every subscriber gets the balance as it is now. `entries` is 0: the event
   * folds no entry this instance heard.
   */
  resync(events: readonly BalanceEvent[]): void {
    for (const event of events) {
      if (!this.bySubscription.has(event.subscriptionId)) continue;
      const slot = this.slot(balanceKey(event.subscriptionId, event.type));
      clearTimeout(slot.timer);
      slot.timer = undefined;
      slot.pending = undefined;
      slot.lastSeq = Math.max(slot.lastSeq, event.lastEntry.seq);
      slot.pushedAt = this.clock.now();
      this.deliver(event);
    }
  }

  /** Ends every subscriber (the server is stopping). */
  close(): void {
    for (const slot of this.slots.values()) clearTimeout(slot.timer);
    this.slots.clear();
    this.batch.length = 0;
    for (const set of [...this.bySubscription.values()]) for (const subscriber of [...set]) subscriber.queue.return();
  }

  private fold(change: BalanceChange): void {
    const slot = this.slot(balanceKey(change.subscriptionId, change.creditType));
    if (change.lastEntry.seq <= slot.lastSeq) return;
    slot.lastSeq = change.lastEntry.seq;
    const before = slot.pending;
    slot.pending = {
      subscriptionId: change.subscriptionId,
      type: change.creditType,
      balance: change.balance,
      entries: (before?.entries ?? 0) + change.entries,
      lastEntry: change.lastEntry,
      threshold: change.crossing ?? before?.threshold ?? null,
    };
    // Already timed, or already in this batch: the event waiting takes this change too.
    if (slot.timer || slot.queued) return;
    slot.queued = true;
    if (this.batch.push(slot) === 1) queueMicrotask(() => this.endBatch());
  }

  /** Pushes each balance of the batch that is due, and times the others for when they are. */
  private endBatch(): void {
    const now = this.clock.now();
    for (const slot of this.batch.splice(0)) {
      slot.queued = false;
      if (!slot.pending) continue;
      const due = slot.pushedAt + this.options.pushIntervalMs;
      if (due <= now) {
        this.flush(slot);
        continue;
      }
      // At most an interval: the estimate of the database's clock steps back when old readings expire.
      slot.timer = setTimeout(() => {
        slot.timer = undefined;
        this.flush(slot);
      }, Math.min(due - now, this.options.pushIntervalMs));
    }
  }

  private flush(slot: BalanceSlot): void {
    const event = slot.pending;
    slot.pending = undefined;
    if (!event) return;
    // A held-back event stands for the end of the interval it waited for, so a burst is pushed once
    // per interval; a change made later than that stands for itself.
    slot.pushedAt = Math.max(event.lastEntry.createdAt.getTime(), slot.pushedAt + this.options.pushIntervalMs);
    this.deliver(event);
  }

  private deliver(event: BalanceEvent): void {
    const set = this.bySubscription.get(event.subscriptionId);
    if (!set) return;
    for (const subscriber of [...set]) {
      if (subscriber.types && !subscriber.types.has(event.type)) continue;
      // A subscriber past its bound is ended with SlowConsumerError; its socket is dropped, and
      // counted, once for all its subscriptions (websocket-server.ts).
      subscriber.queue.push(event);
    }
  }

  private slot(key: string): BalanceSlot {
    let slot = this.slots.get(key);
    if (!slot) {
      slot = { pushedAt: Number.NEGATIVE_INFINITY, lastSeq: 0, pending: undefined, timer: undefined, queued: false };
      this.slots.set(key, slot);
    }
    return slot;
  }

  private remove(subscriber: Subscriber): void {
    const set = this.bySubscription.get(subscriber.subscriptionId);
    if (!set?.delete(subscriber)) return;
    this.count--;
    this.options.onSubscribersChanged?.(this.count);
    if (set.size > 0) return;
    // Nobody here follows this subscription any more: forget its balances.
    this.bySubscription.delete(subscriber.subscriptionId);
    const prefix = balanceKey(subscriber.subscriptionId, "");
    for (const [key, slot] of this.slots) {
      if (!key.startsWith(prefix)) continue;
      clearTimeout(slot.timer);
      // It may still be in the current batch: with nothing pending, nothing is pushed or timed for it.
      slot.pending = undefined;
      this.slots.delete(key);
    }
  }
}
