/**
 * The database's own limit: the server's debit statement driven by a bare node-postgres pool at the
 * same concurrency as the HTTP scenarios, with no server at all. The statement is not copied: it is
 * captured from the ledger function itself (rendered by Drizzle's dialect) and replayed with each
 * request's values, so this measures exactly the SQL the server runs.
 */
import { randomUUID } from "node:crypto";
import pg from "pg";
import type { SQL } from "drizzle-orm";
import { PgDialect } from "drizzle-orm/pg-core";
import type { DbOrTx } from "../src/db/database.js";
import type { BenchHoldRequest } from "./debit-under-test.js";
import type { BenchSubscription } from "./database.js";
import type { Measurement } from "./http-scenarios.js";

const SENTINEL_SUBSCRIPTION = "00000000-0000-4000-8000-00000000b0b0";
const SENTINEL_ACTOR = "bench-sentinel-actor";
const SENTINEL_REQUEST = "bench-sentinel-request";
const SENTINEL_ENTRY = "00000000-0000-4000-8000-00000000e0e0";

export interface StatementTemplate {
  text: string;
  /** Builds the parameters for one debit of `subscription`. */
  params(subscription: BenchSubscription, requestId: string): unknown[];
}

/**
 * Runs `debit` against a stand-in database that records the statement instead of executing it, and
 * turns it into a template whose subscription, actor and request id are filled in per call.
 */
export async function captureDebitStatement(
  debit: (db: DbOrTx, request: BenchHoldRequest) => Promise<unknown>,
): Promise<StatementTemplate> {
  let captured: SQL | undefined;
  const recorder = {
    execute: async (query: SQL) => {
      captured ??= query;
      // One granted row, whatever the statement's shape, so the function issues nothing else.
      return { rows: [{ id: randomUUID(), entry_id: randomUUID(), balance_after: 1, before: 2, granted: true, allowed: true, ord: 1 }] };
    },
  } as unknown as DbOrTx;
  await debit(recorder, {
    subscriptionId: SENTINEL_SUBSCRIPTION,
    creditType: "leads",
    amount: 1,
    operation: "Mutation.searchLeads",
    estimated: 1,
    actorId: SENTINEL_ACTOR,
    adminOverride: false,
    requestId: SENTINEL_REQUEST,
    entryId: SENTINEL_ENTRY,
  });
  if (!captured) throw new Error("the debit function ran no statement");
  const { sql: text, params } = new PgDialect().sqlToQuery(captured);
  // The values travel as plain parameters, inside arrays or inside one JSON text: each sentinel is
  // replaced wherever it stands, and every call gets an entry id of its own (chosen before it runs).
  if (!params.some((p) => JSON.stringify(p).includes(SENTINEL_SUBSCRIPTION))) {
    throw new Error("could not find the subscription id among the statement's parameters");
  }
  const fill = (value: unknown, subscription: BenchSubscription, requestId: string, entryId: string): unknown => {
    if (Array.isArray(value)) return value.map((v) => fill(v, subscription, requestId, entryId));
    if (typeof value !== "string") return value;
    return value
      .replaceAll(SENTINEL_SUBSCRIPTION, subscription.id)
      .replaceAll(SENTINEL_ACTOR, subscription.ownerId)
      .replaceAll(SENTINEL_REQUEST, requestId)
      .replaceAll(SENTINEL_ENTRY, entryId);
  };
  return {
    text,
    params(subscription, requestId) {
      const entryId = randomUUID();
      return params.map((p) => fill(p, subscription, requestId, entryId));
    },
  };
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** A pool of `connections` kept open across runs, so its backends' CPU time is still there to read after each. */
export function rawDebitPool(databaseUrl: string, connections: number): pg.Pool {
  return new pg.Pool({ connectionString: databaseUrl, max: connections, idleTimeoutMillis: 0 });
}

/** `connections` loops, each on its own pooled connection, running the template on rotating subscriptions. */
export async function loadRawDebit(
  pool: pg.Pool,
  template: StatementTemplate,
  subscriptions: BenchSubscription[],
  connections: number,
  seconds: number,
): Promise<Measurement> {
  let latencies = new Float64Array(1 << 16);
  let count = 0;
  let failures = 0;
  let next = 0;
  {
    // Open every connection before the clock starts, as autocannon does with its sockets.
    const clients = await Promise.all(Array.from({ length: connections }, () => pool.connect()));
    clients.forEach((c) => c.release());
    const started = performance.now();
    const deadline = started + seconds * 1000;
    const worker = async () => {
      while (performance.now() < deadline) {
        const subscription = subscriptions[next++ % subscriptions.length];
        const t0 = performance.now();
        try {
          const result = await pool.query(template.text, template.params(subscription, `raw-${next}`));
          if (result.rows.length === 0) failures++;
        } catch {
          failures++;
        }
        if (count === latencies.length) {
          const grown = new Float64Array(latencies.length * 2);
          grown.set(latencies);
          latencies = grown;
        }
        latencies[count++] = performance.now() - t0;
      }
    };
    await Promise.all(Array.from({ length: connections }, worker));
    const elapsed = (performance.now() - started) / 1000;
    const sorted = latencies.slice(0, count).sort();
    return {
      requestsPerSecond: count / elapsed,
      p50Ms: percentile(sorted, 50),
      p99Ms: percentile(sorted, 99),
      requests: count,
      failures,
      durationSeconds: elapsed,
    };
  }
}

/**
 * The raw debits leave their pending marks (no server settles them): remove them, as a successful
 * settlement would, so the server's recovery pass never refunds them mid-run.
 */
export async function cleanUpRawDebits(pool: pg.Pool): Promise<void> {
  await pool.query("delete from pending_charges where request_id like 'raw-%'");
}
