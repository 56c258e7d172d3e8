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
}

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
          if (recording && createdAt) latencies.push(Date.now() - Date.parse(createdAt));
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
      latencies.length = 0;
      recording = true;
    },
    figures() {
      const sorted = [...latencies].sort((a, b) => a - b);
      if (firstError) process.stderr.write(`[bench] live subscriptions failed: ${errors}, first: ${firstError}\n`);
      return { subscribers: clients.length, errors, events: sorted.length, p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99) };
    },
    async close() {
      recording = false;
      closing = true;
      await Promise.all(clients.map((c) => c.dispose()));
    },
  };
}
