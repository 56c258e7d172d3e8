/**
 * The live-balance hub: a leading-edge throttle per balance on the entries' commit time (the first
 * change goes out at once; changes closer together than the push interval fold into one event with
 * the latest balance, the count of entries and the last crossing, pushed once the interval after the
 * last pushed entry has passed; nothing is lost at the end of a burst), changes that arrive together
 * folded into one event, type filters, stale news dropped, slow consumers ended instead of buffered
 * for; and the notification's parsing. Time is faked: Date.now() moves only with the timers.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { parseBalanceNotification, type BalanceChange } from "../../src/live/balance-change.js";
import { BalanceHub, type BalanceEvent } from "../../src/live/balance-hub.js";
import { DatabaseClock } from "../../src/live/database-clock.js";
import { SlowConsumerError } from "../../src/live/subscriber-queue.js";

const SUB = "7c1f0000-0000-4000-8000-000000000001";
const INTERVAL = 100;

interface ChangeOptions {
  /** The entry's createdAt (database time, ms); default: now. */
  at?: number;
  crossing?: BalanceChange["crossing"];
  type?: string;
  entries?: number;
}

function change(seq: number, balance: number, options: ChangeOptions = {}): BalanceChange {
  const type = options.type ?? "ai";
  return {
    subscriptionId: SUB,
    creditType: type,
    balance,
    entries: options.entries ?? 1,
    crossing: options.crossing ?? null,
    lastEntry: {
      id: `e${seq}`, subscriptionId: SUB, creditType: type, kind: "DEBIT", amount: -1, balanceAfter: balance, seq,
      createdAt: new Date(options.at ?? Date.now()),
    },
  };
}

type Received = BalanceEvent & { receivedAt: number };

/** Reads every event of a subscriber as it is pushed, stamped with the (fake) time it arrived. */
function collect(events: AsyncIterableIterator<BalanceEvent>): Received[] {
  const got: Received[] = [];
  void (async () => {
    for await (const event of events) got.push({ ...event, receivedAt: Date.now() });
  })();
  return got;
}

/** Lets time pass, running the timers due and every promise they settle. */
const pass = (ms: number) => vi.advanceTimersByTimeAsync(ms);

describe("BalanceHub", () => {
  const T0 = 1_800_000_000_000;
  let clock: DatabaseClock;
  beforeEach(() => {
    vi.useFakeTimers({ now: T0 });
    clock = new DatabaseClock();
  });
  afterEach(() => vi.useRealTimers());
  const hub = (maxQueued = 100) => new BalanceHub({ pushIntervalMs: INTERVAL, maxQueuedPerSubscriber: maxQueued, clock });
  /** What the relay tells the clock on every tick: the database's time, here the same as ours. */
  const relayReading = () => clock.observe(Date.now(), Date.now());

  it("pushes the first change at once, without waiting for the interval", async () => {
    const h = hub();
    const got = collect(h.subscribe(SUB, undefined));
    h.accept([change(1, 99, { at: Date.now() - 30 })]);
    await pass(0);
    expect(got).toHaveLength(1);
    expect(got[0]).toMatchObject({ balance: 99, entries: 1, threshold: null, receivedAt: T0, lastEntry: { id: "e1" } });
  });

  it("folds a burst into one event with the latest balance, every entry counted and the last crossing", async () => {
    relayReading();
    const h = hub();
    const got = collect(h.subscribe(SUB, undefined));
    // Each change reaches the hub 40 ms after its entry was committed.
    h.accept([change(1, 99, { at: Date.now() - 40 })]);
    await pass(10);
    h.accept([change(2, 97, { at: Date.now() - 40, crossing: "LOW_BALANCE", entries: 2 })]);
    await pass(10);
    h.accept([change(3, 96, { at: Date.now() - 40 })]);
    await pass(10);
    h.accept([change(4, 95, { at: Date.now() - 40 })]);
    expect(got).toHaveLength(1);

    // Due an interval after the pushed entry's commit (T0 - 40), by the database's clock (which the
    // estimate may trail by a millisecond): not an interval after its push, nor after the last change.
    await pass(T0 - 40 + INTERVAL - Date.now());
    expect(got).toHaveLength(1);
    await pass(1);
    expect(got).toHaveLength(2);
    expect(got[1]).toMatchObject({ balance: 95, entries: 4, threshold: "LOW_BALANCE", lastEntry: { id: "e4" } });
    expect(got[1].receivedAt - got[0].receivedAt).toBeLessThan(INTERVAL);
  });

  it("pushes at once a change made an interval or more after the last pushed one, however soon it arrives", async () => {
    relayReading();
    const h = hub();
    const got = collect(h.subscribe(SUB, undefined));
    h.accept([change(1, 99, { at: Date.now() - 80 })]);
    await pass(25);
    h.accept([change(2, 98, { at: T0 - 80 + INTERVAL })]);
    await pass(0);
    expect(got.map((e) => [e.balance, e.receivedAt - T0])).toEqual([
      [99, 0],
      [98, 25],
    ]);
  });

  it("loses nothing at the end of a burst and pushes it about once per interval", async () => {
    relayReading();
    const h = hub();
    const got = collect(h.subscribe(SUB, undefined));
    for (let seq = 1; seq <= 30; seq++) {
      h.accept([change(seq, 100 - seq, { at: Date.now() - 5 })]);
      await pass(10);
    }
    await pass(10 * INTERVAL);
    // 300 ms of changes: the first at once, then one per interval, the last with the final balance.
    expect(got.length).toBeGreaterThanOrEqual(3);
    expect(got.length).toBeLessThanOrEqual(5);
    expect(got.reduce((sum, e) => sum + e.entries, 0)).toBe(30);
    expect(got.at(-1)).toMatchObject({ balance: 70, lastEntry: { id: "e30" } });
    for (let i = 1; i < got.length; i++) expect(got[i].receivedAt - got[i - 1].receivedAt).toBeGreaterThanOrEqual(INTERVAL - 10);
    const count = got.length;
    await pass(10 * INTERVAL);
    expect(got).toHaveLength(count);
  });

  it("folds changes that arrive together (one read of the notification session) into one event", async () => {
    const h = hub();
    const got = collect(h.subscribe(SUB, undefined));
    h.accept([change(1, 99)]);
    h.accept([change(2, 98)]);
    await pass(0);
    expect(got).toHaveLength(1);
    expect(got[0]).toMatchObject({ balance: 98, entries: 2, receivedAt: T0 });
  });

  it.each([
    ["ahead of", 5_000],
    ["behind", -5_000],
  ])("spaces events by the database's clock when it is %s ours", async (_label, skew) => {
    clock.observe(Date.now() + skew, Date.now());
    const h = hub();
    const got = collect(h.subscribe(SUB, undefined));
    h.accept([change(1, 99, { at: Date.now() + skew - 20 })]);
    await pass(30);
    h.accept([change(2, 98, { at: Date.now() + skew - 20 })]);
    await pass(0);
    expect(got).toHaveLength(1);
    // Held until an interval after the first entry's commit: 80 ms after it was pushed.
    await pass(INTERVAL - 20 - 30 + 1);
    expect(got.map((e) => [e.balance, e.receivedAt - T0])).toEqual([
      [99, 0],
      [98, INTERVAL - 20 + 1],
    ]);
  });

  it("without a reading of the database's clock, never spaces events closer than the interval", async () => {
    // Only the changes themselves tell the time: each arrives 30 ms after its commit, which the hub
    // cannot tell from a clock 30 ms behind, so it waits those 30 ms more rather than push early.
    const h = hub();
    const got = collect(h.subscribe(SUB, undefined));
    h.accept([change(1, 99, { at: Date.now() - 30 })]);
    await pass(10);
    h.accept([change(2, 98, { at: Date.now() - 30 })]);
    await pass(INTERVAL + 10);
    expect(got.map((e) => e.receivedAt - T0)).toEqual([0, INTERVAL + 1]);
  });

  it("filters by type, ignores other subscriptions and news older than what was pushed", async () => {
    const h = hub();
    const got = collect(h.subscribe(SUB, ["leads"]));
    h.accept([change(1, 10, { type: "ai" }), change(2, 20, { type: "leads" }), { ...change(3, 5), subscriptionId: "other" }]);
    await pass(0);
    h.accept([change(1, 30, { type: "leads" })]);
    await pass(500);
    h.resync([{ subscriptionId: SUB, type: "leads", balance: 20, entries: 0, threshold: null, lastEntry: change(2, 20, { type: "leads" }).lastEntry }]);
    await pass(0);
    expect(got.map((e) => [e.type, e.balance, e.entries])).toEqual([
      ["leads", 20, 1],
      ["leads", 20, 0],
    ]);
  });

  it("ends a subscriber that falls too far behind, and forgets it", async () => {
    const h = hub(2);
    const events = h.subscribe(SUB, undefined);
    for (let seq = 1; seq <= 3; seq++) {
      h.accept([change(seq, 100 - seq)]);
      await pass(INTERVAL + 1);
    }
    expect(h.subscriberCount).toBe(0);
    await expect(events.next()).rejects.toBeInstanceOf(SlowConsumerError);
  });

  it("counts subscribers until they stop", async () => {
    const h = hub();
    const a = h.subscribe(SUB, undefined);
    h.subscribe(SUB, ["ai"]);
    expect(h.subscriberCount).toBe(2);
    await a.return?.();
    expect(h.subscriberCount).toBe(1);
    h.close();
    expect(h.subscriberCount).toBe(0);
  });
});

describe("parseBalanceNotification", () => {
  it("reads the trigger's rows and skips malformed ones", () => {
    const payload = JSON.stringify([
      [SUB, "ai", 7, 3, "e9", "DEBIT", -2, 42, "2026-11-29T02:58:02.123456+00:00", "BALANCE_DEPLETED"],
      ["broken"],
      [SUB, "leads", 1, 1, "e10", "GRANT", 1, "43", "2026-11-29T02:58:03+00:00", "SOMETHING_ELSE"],
    ]);
    expect(parseBalanceNotification(payload)).toEqual([
      {
        subscriptionId: SUB, creditType: "ai", balance: 7, entries: 3, crossing: "BALANCE_DEPLETED",
        lastEntry: {
          id: "e9", subscriptionId: SUB, creditType: "ai", kind: "DEBIT", amount: -2, balanceAfter: 7, seq: 42,
          createdAt: new Date("2026-11-29T02:58:02.123Z"),
        },
      },
      {
        subscriptionId: SUB, creditType: "leads", balance: 1, entries: 1, crossing: null,
        lastEntry: {
          id: "e10", subscriptionId: SUB, creditType: "leads", kind: "GRANT", amount: 1, balanceAfter: 1, seq: 43,
          createdAt: new Date("2026-11-29T02:58:03Z"),
        },
      },
    ]);
  });
});
