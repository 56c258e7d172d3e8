/**
 * Fans balance changes out to this instance's creditBalanceChanged subscribers. Changes arrive from
 * the notification listener (every committed ledger statement, on whichever instance it ran); only
 * balances someone here subscribes to are kept. Changes of one balance closer together than the
 * push interval are coalesced into one event: the latest balance and entry, the number of entries
 * folded in, and the last threshold crossing among them. The first change after a quiet interval is
 * pushed at once, so a lone debit reaches its subscribers without waiting.
 */
import type { BalanceChange, EntryRef, ThresholdCrossingValue } from "./balance-change.js";
import { balanceKey } from "./balance-change.js";
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
  now?: () => number;
  onSubscribersChanged?: (count: number) => void;
  onSlowConsumer?: () => void;
}

interface Subscriber {
  subscriptionId: string;
  /** Credit types wanted; undefined: all. */
  types: ReadonlySet<string> | undefined;
  queue: SubscriberQueue<BalanceEvent>;
}

interface BalanceSlot {
  lastPushAt: number;
  /** Highest ledger seq already folded into an event: older news (a resync racing a notification) is dropped. */
  lastSeq: number;
  pending: BalanceEvent | undefined;
  timer: NodeJS.Timeout | undefined;
}

export class BalanceHub {
  private readonly bySubscription = new Map<string, Set<Subscriber>>();
  private readonly slots = new Map<string, BalanceSlot>();
  private count = 0;
  private readonly now: () => number;

  constructor(private readonly options: HubOptions) {
    this.now = options.now ?? Date.now;
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

  /** Takes the changes of one notification. */
  accept(changes: readonly BalanceChange[]): void {
    for (const change of changes) {
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
      slot.lastPushAt = this.now();
      this.deliver(event);
    }
  }

  /** Ends every subscriber (the server is stopping). */
  close(): void {
    for (const slot of this.slots.values()) clearTimeout(slot.timer);
    this.slots.clear();
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
    if (slot.timer) return;
    const wait = slot.lastPushAt + this.options.pushIntervalMs - this.now();
    if (wait <= 0) {
      this.flush(slot);
    } else {
      slot.timer = setTimeout(() => {
        slot.timer = undefined;
        this.flush(slot);
      }, wait);
    }
  }

  private flush(slot: BalanceSlot): void {
    const event = slot.pending;
    slot.pending = undefined;
    if (!event) return;
    slot.lastPushAt = this.now();
    this.deliver(event);
  }

  private deliver(event: BalanceEvent): void {
    const set = this.bySubscription.get(event.subscriptionId);
    if (!set) return;
    for (const subscriber of [...set]) {
      if (subscriber.types && !subscriber.types.has(event.type)) continue;
      if (!subscriber.queue.push(event)) this.options.onSlowConsumer?.();
    }
  }

  private slot(key: string): BalanceSlot {
    let slot = this.slots.get(key);
    if (!slot) this.slots.set(key, (slot = { lastPushAt: 0, lastSeq: 0, pending: undefined, timer: undefined }));
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
      this.slots.delete(key);
    }
  }
}
