/**
 * The live-balance side of the bench: 1,000 graphql-ws clients (one per spread subscription, each
 * with its owner's token) following creditBalanceChanged while the metered load charges those same
 * subscriptions. Each event's push latency is its arrival time minus its last entry's createdAt
 * (the database clock of the same machine): from the charge's statement to the client.
 */
import { createClient, type Client } from "graphql-ws";
import WebSocket from "ws";
import type { BenchSubscription } from "./database.js";

const FOLLOW = `subscription Follow($s: ID!) { creditBalanceChanged(subscriptionId: $s) { balance entries lastEntry { id createdAt } } }`;

export interface PushFigures {
  subscribers: number;
  /** Subscriptions that ended with an error while the run was measured (a valid run has none). */
  errors: number;
  events: number;
  p50Ms: number;
  p99Ms: number;
  /**
   * The same split by what the push interval did: an event whose last entry came less than the
   * interval after the previous event's was (most likely) held back by coalescing, so its latency
   * includes up to the interval by design; the others show the pipeline alone.
   */
  atOnce: { events: number; p99Ms: number };
  heldBack: { events: number; p99Ms: number };
}

/** BALANCE_PUSH_INTERVAL as the bench's server runs it (the default). */
const PUSH_INTERVAL_MS = 100;

export interface LiveSubscribers {
  /** Starts recording latencies (events before this are not counted). */
  record(): void;
  figures(): PushFigures;
  close(): Promise<void>;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Connects one subscriber per subscription and resolves once every socket is acknowledged. */
export async function connectLiveSubscribers(
  url: string,
  subscriptions: BenchSubscription[],
  tokens: Map<string, string>,
): Promise<LiveSubscribers> {
  const latencies: number[] = [];
  const atOnce: number[] = [];
  const heldBack: number[] = [];
  let recording = false;
  let closing = false;
  let errors = 0;
  let firstError: string | undefined;
  const clients: Client[] = [];
  let acked: Promise<void>[] = [];
  for (const [index, subscription] of subscriptions.entries()) {
    // In waves of 100, as clients come back after a deploy, rather than 1,000 handshakes at once.
    if (index % 100 === 0) {
      await Promise.all(acked);
      acked = [];
    }
    /** The previous event's last entry, on the database's clock. */
    let previousEntryAt = Number.NEGATIVE_INFINITY;
    let ack!: () => void;
    let fail!: (err: unknown) => void;
    acked.push(new Promise<void>((resolve, reject) => ((ack = resolve), (fail = reject))));
    const client = createClient({
      url: url.replace(/^http/, "ws") + "/graphql",
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${tokens.get(subscription.ownerId)}` },
      retryAttempts: 0,
      lazy: false,
      on: { connected: () => ack(), closed: (event) => fail(new Error(`live subscriber closed: ${(event as { code?: number }).code}`)) },
      onNonLazyError: (err) => fail(err),
    });
    client.subscribe(
      { query: FOLLOW, variables: { s: subscription.id } },
      {
        next: (value) => {
          const createdAt = (value.data as any)?.creditBalanceChanged?.lastEntry?.createdAt;
          if (!createdAt) return;
          const entryAt = Date.parse(createdAt);
          const latency = Date.now() - entryAt;
          const held = entryAt - previousEntryAt < PUSH_INTERVAL_MS;
          previousEntryAt = entryAt;
          if (!recording) return;
          latencies.push(latency);
          (held ? heldBack : atOnce).push(latency);
        },
        error: (err) => {
          if (closing) return;
          errors++;
          firstError ??= err instanceof Error ? err.message : JSON.stringify(err ?? null) + String((err as { code?: number })?.code ?? "");
        },
        complete: () => undefined,
      },
    );
    clients.push(client);
  }
  await Promise.all(acked);
  // The subscribe messages follow the acks; give the server a moment to open every stream.
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  return {
    record() {
      latencies.length = atOnce.length = heldBack.length = 0;
      recording = true;
    },
    figures() {
      const sorted = [...latencies].sort((a, b) => a - b);
      const split = (part: number[]) => ({ events: part.length, p99Ms: percentile([...part].sort((a, b) => a - b), 99) });
      if (firstError) process.stderr.write(`[bench] live subscriptions failed: ${errors}, first: ${firstError}\n`);
      return {
        subscribers: clients.length,
        errors,
        events: sorted.length,
        p50Ms: percentile(sorted, 50),
        p99Ms: percentile(sorted, 99),
        atOnce: split(atOnce),
        heldBack: split(heldBack),
      };
    },
    async close() {
      recording = false;
      closing = true;
      await Promise.all(clients.map((c) => c.dispose()));
    },
  };
}
