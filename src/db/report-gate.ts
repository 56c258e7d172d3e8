/**
 * Reports: the reads that aggregate over history (creditUsage, creditStats, ledgerAudit), whose cost
 * grows with the ledger and with the window a caller picks, unlike the charge path's statements and
 * the ledger's indexed pages. An outside audit sent 20 concurrent year-long creditUsage of one owner
 * (well under REQUEST_LIMIT): each held a pooled connection for minutes, so every other customer's
 * metered call hung, /health said the database was down, plan renewal could not connect and the
 * instance lost its lease.
 *
 * So every report goes through this instance's gate, and runs bounded:
 *  - at most a quarter of the pool at once (`reportSlots`: one on PGlite, whose single connection a
 *    report takes whole anyway), so charges, /health, the lease and renewals always find connections;
 *  - a few more wait their turn (REPORT_QUEUE_PER_SLOT per slot), each at most REPORT_QUERY_TIMEOUT,
 *    the longest a running report may take before its slot frees;
 *  - past the queue, or after that wait, RATE_LIMITED with retryAfterSeconds: by then every report
 *    running now has finished or been cancelled. A refusal costs nothing, where a report queued
 *    behind minutes of others would answer a client that has long gone;
 *  - each in its own read-only transaction with SET LOCAL statement_timeout (statement-timeout.ts):
 *    REPORT_QUERY_TIMEOUT, and for ledgerAudit, which reads the whole ledger by design and has no
 *    window to narrow, LEDGER_AUDIT_TIMEOUT_FACTOR times that.
 *
 * The gate lives with the services it guards (one per instance), created on first use: a gate per
 * request or per resolver call would bound nothing.
 */
import { RateLimitedError } from "../errors/errors.js";
import type { Database, DatabaseKind, Transaction } from "./database.js";
import { retryOnLostConnection } from "./lost-connection-retry.js";
import { readWithStatementTimeout } from "./statement-timeout.js";

/** Reports that may wait per slot before further ones are refused. */
export const REPORT_QUEUE_PER_SLOT = 4;

/** ledgerAudit's bound, in REPORT_QUERY_TIMEOUTs (5 minutes by default). */
export const LEDGER_AUDIT_TIMEOUT_FACTOR = 10;

export interface ReportGateLimits {
  /** Reports running at once. */
  slots: number;
  /** Reports waiting for a slot at most; one more is refused. */
  queueLength: number;
  /** How long a report may wait for a slot before it is refused. */
  maxWaitMs: number;
}

interface Waiter {
  admit(): void;
  timer: NodeJS.Timeout;
}

/** At most `slots` reports at once; a bounded, time-limited queue; RATE_LIMITED past either. */
export class ReportGate {
  private running = 0;
  private readonly waiting: Waiter[] = [];

  constructor(private readonly limits: ReportGateLimits) {}

  async run<T>(report: () => Promise<T>): Promise<T> {
    await this.enter();
    try {
      return await report();
    } finally {
      this.leave();
    }
  }

  private enter(): Promise<void> {
    if (this.running < this.limits.slots) {
      this.running++;
      return Promise.resolve();
    }
    if (this.waiting.length >= this.limits.queueLength) return Promise.reject(this.refusal());
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        admit: () => {
          clearTimeout(waiter.timer);
          resolve();
        },
        timer: setTimeout(() => {
          this.waiting.splice(this.waiting.indexOf(waiter), 1);
          reject(this.refusal());
        }, this.limits.maxWaitMs),
      };
      // A waiter must not keep a stopping process alive.
      waiter.timer.unref();
      this.waiting.push(waiter);
    });
  }

  /** A finished report hands its slot straight to the longest waiter, so a newcomer cannot take it first. */
  private leave(): void {
    const next = this.waiting.shift();
    if (next) next.admit();
    else this.running--;
  }

  private refusal(): RateLimitedError {
    const retryAfterSeconds = Math.max(1, Math.ceil(this.limits.maxWaitMs / 1000));
    return new RateLimitedError(
      `Too many reports (creditUsage, creditStats, ledgerAudit) are running on this server: try again in ${retryAfterSeconds} s`,
      retryAfterSeconds,
    );
  }
}

/** Reports at once: a quarter of the pool, at least one; one on PGlite (a single connection). */
export function reportSlots(kind: DatabaseKind, poolSize: number): number {
  return kind === "pglite" ? 1 : Math.max(1, Math.floor(poolSize / 4));
}

/** What reports need of the application's services (AppServices has it). */
export interface ReportServices {
  readonly db: Database;
  readonly database: { readonly kind: DatabaseKind };
  readonly config: { readonly DATABASE_POOL_SIZE: number; readonly REPORT_QUERY_TIMEOUT: number };
}

const gates = new WeakMap<ReportServices, ReportGate>();

function gateOf(services: ReportServices): ReportGate {
  let gate = gates.get(services);
  if (gate === undefined) {
    const slots = reportSlots(services.database.kind, services.config.DATABASE_POOL_SIZE);
    gate = new ReportGate({ slots, queueLength: slots * REPORT_QUEUE_PER_SLOT, maxWaitMs: services.config.REPORT_QUERY_TIMEOUT });
    gates.set(services, gate);
  }
  return gate;
}

/**
 * Runs a report through the instance's gate, in a read-only transaction whose statements the
 * database cancels after `timeoutMs` (statementTimedOut tells that failure apart; the caller says
 * it in its own terms). A lost connection is retried inside the slot, as any read is.
 */
export function runReport<T>(services: ReportServices, timeoutMs: number, read: (tx: Transaction) => Promise<T>): Promise<T> {
  return gateOf(services).run(() => retryOnLostConnection(() => readWithStatementTimeout(services.db, timeoutMs, read)));
}
