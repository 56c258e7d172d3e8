/** The natural-batching queue behind the coalescing ledger, with a stand-in statement. */
import { describe, expect, it } from "vitest";
import { Coalescer } from "../../src/ledger/coalescer.js";

interface Item {
  key: string;
  n: number;
}

/** A statement we finish by hand, recording every batch it was given. */
function manualStatements() {
  const batches: Item[][] = [];
  const finishers: ((fail?: Error) => void)[] = [];
  const run = (batch: Item[]) =>
    new Promise<string[]>((resolve, reject) => {
      batches.push(batch);
      finishers.push((fail) => (fail ? reject(fail) : resolve(batch.map((i) => `${i.key}${i.n}`))));
    });
  return { run, batches, finish: (i: number, fail?: Error) => finishers[i](fail) };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe("Coalescer", () => {
  it("sends what arrives together as one statement and hands each caller its own result", async () => {
    const s = manualStatements();
    const coalescer = new Coalescer<Item, string>({ run: s.run, maxBatch: 10, maxInFlight: 2 });
    const results = [1, 2, 3].map((n) => coalescer.submit({ key: "a", n }));
    await tick();
    expect(s.batches).toEqual([[{ key: "a", n: 1 }, { key: "a", n: 2 }, { key: "a", n: 3 }]]);
    s.finish(0);
    expect(await Promise.all(results)).toEqual(["a1", "a2", "a3"]);
  });

  it("queues behind running statements and sends the whole queue next, up to maxBatch", async () => {
    const s = manualStatements();
    const coalescer = new Coalescer<Item, string>({ run: s.run, maxBatch: 3, maxInFlight: 1 });
    const first = coalescer.submit({ key: "a", n: 1 });
    await tick();
    const later = [2, 3, 4, 5].map((n) => coalescer.submit({ key: "b", n }));
    await tick();
    expect(s.batches).toHaveLength(1); // one statement at a time
    s.finish(0);
    await first;
    await tick();
    expect(s.batches[1].map((i) => i.n)).toEqual([2, 3, 4]);
    s.finish(1);
    await tick();
    expect(s.batches[2].map((i) => i.n)).toEqual([5]);
    s.finish(2);
    expect(await Promise.all(later)).toEqual(["b2", "b3", "b4", "b5"]);
    await coalescer.idle();
    expect(coalescer.pending).toBe(0);
  });

  it("never puts one key in two running statements, and keeps each key's order", async () => {
    const s = manualStatements();
    const coalescer = new Coalescer<Item, string>({ run: s.run, maxBatch: 10, maxInFlight: 4, keysOf: (i) => [i.key] });
    const a1 = coalescer.submit({ key: "hot", n: 1 });
    await tick();
    const rest = [
      coalescer.submit({ key: "hot", n: 2 }),
      coalescer.submit({ key: "cold", n: 1 }),
      coalescer.submit({ key: "hot", n: 3 }),
    ];
    await tick();
    // "hot" is busy: only "cold" may go now, in a statement of its own.
    expect(s.batches.map((b) => b.map((i) => `${i.key}${i.n}`))).toEqual([["hot1"], ["cold1"]]);
    s.finish(0);
    await a1;
    await tick();
    expect(s.batches[2].map((i) => `${i.key}${i.n}`)).toEqual(["hot2", "hot3"]);
    s.finish(1);
    s.finish(2);
    expect(await Promise.all(rest)).toEqual(["hot2", "cold1", "hot3"]);
  });

  it("a failed statement fails each of its callers, and the queue goes on", async () => {
    const s = manualStatements();
    const coalescer = new Coalescer<Item, string>({ run: s.run, maxBatch: 10, maxInFlight: 1 });
    const failing = [1, 2].map((n) => coalescer.submit({ key: "a", n }));
    await tick();
    const next = coalescer.submit({ key: "a", n: 3 });
    s.finish(0, new Error("connection lost"));
    for (const p of failing) await expect(p).rejects.toThrow("connection lost");
    await tick();
    s.finish(1);
    expect(await next).toBe("a3");
  });

  it("a statement that answers the wrong number of results fails its callers", async () => {
    const coalescer = new Coalescer<Item, string>({ run: async () => ["only one"], maxBatch: 10, maxInFlight: 1 });
    const results = [1, 2].map((n) => coalescer.submit({ key: "a", n }).catch((err: Error) => err.message));
    expect(await Promise.all(results)).toEqual(["a batch of 2 returned 1 results", "a batch of 2 returned 1 results"]);
  });

  it("holds an item of several keys until all are free, and later items of any of them behind it", async () => {
    interface Multi { keys: string[]; n: number }
    const batches: string[][] = [];
    const finishers: (() => void)[] = [];
    const coalescer = new Coalescer<Multi, number>({
      maxBatch: 10,
      maxInFlight: 4,
      keysOf: (m) => m.keys,
      run: (batch) =>
        new Promise((resolve) => {
          batches.push(batch.map((m) => `${m.keys.join("+")}#${m.n}`));
          finishers.push(() => resolve(batch.map((m) => m.n)));
        }),
    });
    const first = coalescer.submit({ keys: ["a"], n: 1 });
    await tick();
    const both = coalescer.submit({ keys: ["a", "b"], n: 2 });
    const b = coalescer.submit({ keys: ["b"], n: 3 });
    const c = coalescer.submit({ keys: ["c"], n: 4 });
    await tick();
    // "a" is busy: the two-key item waits, the later "b" item waits behind it, "c" goes.
    expect(batches).toEqual([["a#1"], ["c#4"]]);
    finishers[0]();
    await first;
    await tick();
    expect(batches[2]).toEqual(["a+b#2", "b#3"]);
    finishers[1]();
    finishers[2]();
    expect(await Promise.all([both, b, c])).toEqual([2, 3, 4]);
  });
});
