/**
 * CallerSlots (src/graphql/plugins/large-read-slots.ts): each caller's large reads run at most
 * `atOnce` at a time, more wait in arrival order, and past `waiting` waiting one is refused with
 * RATE_LIMITED; another caller's reads are not held by the first's.
 */
import { ApolloServer } from "@apollo/server";
import { describe, expect, it } from "vitest";
import type { Viewer } from "../../src/auth/viewer.js";
import { RateLimitedError } from "../../src/errors/errors.js";
import { formatError } from "../../src/graphql/format-error.js";
import { CallerSlots, LARGE_READS_AT_ONCE, LARGE_READS_WAITING, largeReadSlotsPlugin } from "../../src/graphql/plugins/large-read-slots.js";

/** Whether a promise has settled, after the microtasks queued so far. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  void promise.then(
    () => (done = true),
    () => (done = true),
  );
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

describe("CallerSlots", () => {
  it("runs two of a caller's reads at once, queues the rest in order, refuses past the queue, and frees everything", async () => {
    const slots = new CallerSlots(2, 2);
    const first = await slots.acquire("eve");
    const second = await slots.acquire("eve");
    const third = slots.acquire("eve");
    const fourth = slots.acquire("eve");
    expect(await settled(third)).toBe(false);
    await expect(slots.acquire("eve")).rejects.toBeInstanceOf(RateLimitedError);
    await expect(slots.acquire("eve")).rejects.toMatchObject({ extensions: { code: "RATE_LIMITED", retryAfterSeconds: 1 } });

    // Another caller is not held by eve's reads.
    const other = await slots.acquire("bob");

    first();
    first(); // a second release of the same slot changes nothing
    expect(await settled(third)).toBe(true);
    expect(await settled(fourth)).toBe(false);
    second();
    expect(await settled(fourth)).toBe(true);
    (await third)();
    (await fourth)();
    other();
    expect(slots.size).toBe(0);
  });
});

/**
 * Through Apollo, as the server runs it: a paged field whose resolver waits until the test lets it
 * finish, so the reads of one caller that run at once can be counted. (Over HTTP the server's own
 * event loop, busy building the answers, admits requests too slowly to show the queue filling.)
 */
describe("largeReadSlotsPlugin", () => {
  function serverWithGate() {
    let running = 0;
    let mostAtOnce = 0;
    const waiting: (() => void)[] = [];
    const server = new ApolloServer<{ viewer: Viewer | undefined }>({
      typeDefs: "type Item { n: Int! } type Query { items(first: Int): [Item!]! }",
      resolvers: {
        Query: {
          items: async (_: unknown, { first }: { first: number }) => {
            running++;
            mostAtOnce = Math.max(mostAtOnce, running);
            await new Promise<void>((resolve) => waiting.push(resolve));
            running--;
            return Array.from({ length: first }, (_, n) => ({ n }));
          },
        },
      },
      plugins: [largeReadSlotsPlugin()],
      formatError,
    });
    return { server, finishOne: () => waiting.shift()?.(), waitingCount: () => waiting.length, mostAtOnce: () => mostAtOnce };
  }

  const viewer = (id: string): Viewer => ({ id, isAdmin: false });
  const read = (server: ApolloServer<{ viewer: Viewer | undefined }>, id: string, first: number) =>
    server.executeOperation({ query: "query($n: Int) { items(first: $n) { n } }", variables: { n: first } }, { contextValue: { viewer: viewer(id) } });

  it("runs two of a caller's large reads at once, queues 16, refuses the next, and never holds small reads or other callers", async () => {
    const { server, finishOne, waitingCount, mostAtOnce } = serverWithGate();
    await server.start();
    try {
      const large = Array.from({ length: LARGE_READS_AT_ONCE + LARGE_READS_WAITING }, () => read(server, "eve", 1_000));
      await expect.poll(waitingCount).toBe(LARGE_READS_AT_ONCE);
      const refused = await read(server, "eve", 1_000);
      expect(refused.body.kind === "single" && refused.body.singleResult.errors?.[0].extensions).toMatchObject({ code: "RATE_LIMITED", retryAfterSeconds: 1 });
      // A small read of eve's and another caller's large read run beside eve's two.
      const small = read(server, "eve", 20);
      const bob = read(server, "bob", 1_000);
      await expect.poll(waitingCount).toBe(LARGE_READS_AT_ONCE + 2);
      while (waitingCount() > 0 || mostAtOnce() === 0) {
        finishOne();
        await new Promise((resolve) => setImmediate(resolve));
      }
      await Promise.all([...large, small, bob]);
      // Eve's two, her small read and bob's: never more of eve's large reads than two at once.
      expect(mostAtOnce()).toBe(LARGE_READS_AT_ONCE + 2);
    } finally {
      await server.stop();
    }
  });
});
