/**
 * The live-balance hub: coalescing per balance within the push interval, type filters, stale news
 * dropped, slow consumers ended instead of buffered for; and the notification's parsing.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { parseBalanceNotification, type BalanceChange } from "../../src/live/balance-change.js";
import { BalanceHub, type BalanceEvent } from "../../src/live/balance-hub.js";
import { SlowConsumerError } from "../../src/live/subscriber-queue.js";

const SUB = "7c1f0000-0000-4000-8000-000000000001";

function change(seq: number, balance: number, crossing: BalanceChange["crossing"] = null, type = "ai"): BalanceChange {
  return {
    subscriptionId: SUB,
    creditType: type,
    balance,
    entries: 1,
    crossing,
    lastEntry: { id: `e${seq}`, subscriptionId: SUB, creditType: type, kind: "DEBIT", amount: -1, balanceAfter: balance, seq, createdAt: new Date(0) },
  };
}

async function drain(iterator: AsyncIterableIterator<BalanceEvent>, count: number): Promise<BalanceEvent[]> {
  const out: BalanceEvent[] = [];
  for (let i = 0; i < count; i++) out.push((await iterator.next()).value as BalanceEvent);
  return out;
}

describe("BalanceHub", () => {
  let now = 1_000;
  beforeEach(() => {
    vi.useFakeTimers();
    now = 1_000;
  });
  afterEach(() => vi.useRealTimers());
  const hub = (maxQueued = 100) => new BalanceHub({ pushIntervalMs: 100, maxQueuedPerSubscriber: maxQueued, now: () => now });

  it("pushes a lone change at once and coalesces the rest of the interval into one event", async () => {
    const h = hub();
    const events = h.subscribe(SUB, undefined);
    h.accept([change(1, 99)]);
    h.accept([change(2, 98, "LOW_BALANCE")]);
    h.accept([change(3, 97)]);
    const [first] = await drain(events, 1);
    expect(first).toMatchObject({ balance: 99, entries: 1, threshold: null });
    now += 100;
    vi.advanceTimersByTime(100);
    const [second] = await drain(events, 1);
    // The latest balance and entry, every entry counted, the last crossing kept.
    expect(second).toMatchObject({ balance: 97, entries: 2, threshold: "LOW_BALANCE", lastEntry: { id: "e3" } });
  });

  it("filters by type, ignores other subscriptions and news older than what was pushed", async () => {
    const h = hub();
    const events = h.subscribe(SUB, ["leads"]);
    h.accept([change(1, 10, null, "ai"), change(2, 20, null, "leads"), { ...change(3, 5), subscriptionId: "other" }]);
    h.accept([change(1, 30, null, "leads")]);
    now += 500;
    vi.advanceTimersByTime(500);
    h.resync([{ subscriptionId: SUB, type: "leads", balance: 20, entries: 0, threshold: null, lastEntry: change(2, 20, null, "leads").lastEntry }]);
    const got = await drain(events, 2);
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
      now += 100;
      vi.advanceTimersByTime(100);
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
