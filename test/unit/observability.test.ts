/**
 * Observability parts that need no database: metrics counting, the alerts observer's mapping,
 * spike-check scheduling (fake clock), the spike rule, and webhook delivery with retries.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import type { ChargedEvent } from "../../src/credits/charge-observer.js";
import type { Database } from "../../src/db/database.js";
import { createLogger } from "../../src/observability/logger.js";
import { createCreditMetrics, scrapeMetrics } from "../../src/observability/metrics.js";
import { metricsObserver } from "../../src/observability/metrics-observer.js";
import type { NewAlert } from "../../src/observability/alerts/alert.js";
import { AlertService } from "../../src/observability/alerts/alert-service.js";
import { alertsObserver } from "../../src/observability/alerts/alerts-observer.js";
import { formatDuration, MAX_CHECKS_RUNNING, SpikeDetector } from "../../src/observability/alerts/spike-detector.js";
import { isUsageSpike } from "../../src/observability/alerts/usage-window.js";
import { WebhookNotifier } from "../../src/observability/alerts/webhook-notifier.js";
import { FakeClock } from "../helpers/observability-clock.js";

const SUB = "7c1b6d52-9a43-4c0e-8f7e-0d6f4f8b2a11";
const silent = createLogger("silent");

function capturingLogger() {
  const lines: Record<string, any>[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split("\n")) if (line.trim()) lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: createLogger("info", stream), lines };
}

function charged(overrides: Partial<ChargedEvent> = {}): ChargedEvent {
  return {
    requestId: "req-1",
    operation: "Mutation.runAiTask",
    subscriptionId: SUB,
    creditType: "ai",
    actorId: "user-1",
    entryId: "e1",
    charged: 3,
    estimated: 3,
    remaining: 97,
    adminOverride: false,
    fallback: false,
    debitSeconds: 0.002,
    ...overrides,
  };
}

async function value(counter: { get(): Promise<{ values: { value: number; labels: Record<string, unknown> }[] }> }, labels: Record<string, string>) {
  const { values } = await counter.get();
  const match = values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
  return match?.value ?? 0;
}

describe("metrics observer", () => {
  it("counts charged and refunded credits separately, by type and operation", async () => {
    const metrics = createCreditMetrics();
    const observer = metricsObserver(metrics);
    observer.charged(charged({ charged: 3 }));
    observer.charged(charged({ charged: 5 }));
    observer.charged(charged({ charged: 7, creditType: "leads", operation: "Mutation.searchLeads" }));
    observer.refunded({ ...charged(), refunded: 5, reason: "system error" });

    expect(await value(metrics.charged, { type: "ai", operation: "Mutation.runAiTask" })).toBe(8);
    expect(await value(metrics.charged, { type: "leads", operation: "Mutation.searchLeads" })).toBe(7);
    expect(await value(metrics.refunded, { type: "ai", operation: "Mutation.runAiTask" })).toBe(5);
    const histogram = await metrics.debitDuration.get();
    expect(histogram.values.find((v) => v.metricName === "credits_debit_duration_seconds_count")?.value).toBe(3);
  });

  it("counts refusals by code, fallbacks by operation and estimator, failures by stage", async () => {
    const metrics = createCreditMetrics();
    const observer = metricsObserver(metrics);
    observer.refused({ requestId: "r", operation: "Mutation.runAiTask", code: "INSUFFICIENT_CREDITS", message: "m" });
    observer.refused({ requestId: "r", operation: "Mutation.runAiTask", code: "INSUFFICIENT_CREDITS", message: "m" });
    observer.refused({ requestId: "r", operation: "Mutation.runAiTask", code: "FORBIDDEN", message: "m" });
    observer.estimatorFallback({ requestId: "r", operation: "Mutation.searchLeads", estimator: "leads", fallbackAmount: 1, error: new Error("x") });
    observer.transactionFailed({ requestId: "r", operation: "Mutation.runAiTask", stage: "refund", error: new Error("db down") });

    expect(await value(metrics.refused, { code: "INSUFFICIENT_CREDITS" })).toBe(2);
    expect(await value(metrics.refused, { code: "FORBIDDEN" })).toBe(1);
    expect(await value(metrics.estimatorFallbacks, { operation: "Mutation.searchLeads", estimator: "leads" })).toBe(1);
    expect(await value(metrics.transactionFailures, { stage: "refund" })).toBe(1);
  });

  it("keeps each app's metrics in its own registry, and serves process metrics beside them", async () => {
    const first = createCreditMetrics();
    const second = createCreditMetrics();
    metricsObserver(first).charged(charged({ charged: 4 }));
    expect(await value(first.charged, { type: "ai" })).toBe(4);
    expect(await value(second.charged, { type: "ai" })).toBe(0);

    const scrape = await scrapeMetrics(second);
    expect(scrape.contentType).toContain("text/plain");
    expect(scrape.body).toContain("# TYPE credits_charged_total counter");
    expect(scrape.body).toContain("process_cpu_user_seconds_total");
    expect(scrape.body).not.toContain(SUB);
  });
});

describe("alerts observer", () => {
  function recordingAlerts() {
    const raised: NewAlert[] = [];
    const noted: string[] = [];
    const alerts = { raise: (a: NewAlert) => raised.push(a) } as unknown as AlertService;
    const spikes = { noteCharge: (id: string) => noted.push(id) } as unknown as SpikeDetector;
    return { observer: alertsObserver(alerts, spikes), raised, noted };
  }

  it("raises FAILED_TRANSACTION for a failed debit, refund or settle, without the error's text", () => {
    const { observer, raised } = recordingAlerts();
    const dbError = Object.assign(new Error('relation "credit_ledger" does not exist: select secret_column'), { code: "42P01" });
    observer.transactionFailed({
      requestId: "req-9",
      operation: "Mutation.runAiTask",
      stage: "refund",
      subscriptionId: SUB,
      creditType: "ai",
      entryId: "e9",
      amount: 4,
      actorId: "user-1",
      error: dbError,
    });
    expect(raised).toHaveLength(1);
    expect(raised[0]).toMatchObject({
      kind: "FAILED_TRANSACTION",
      subscriptionId: SUB,
      details: { stage: "refund", operation: "Mutation.runAiTask", amount: 4, entryId: "e9", requestId: "req-9", errorType: "Error", sqlState: "42P01" },
    });
    expect(raised[0].message).toContain("refund of 4 ai credits");
    expect(JSON.stringify(raised[0])).not.toContain("secret_column");
  });

  it("keeps a FAILED_TRANSACTION alert whose subscription id is malformed, without the id", () => {
    const { observer, raised } = recordingAlerts();
    observer.transactionFailed({ requestId: "r", operation: "Mutation.runAiTask", stage: "hold", subscriptionId: "not-a-uuid", error: "x" });
    expect(raised[0]).toMatchObject({ kind: "FAILED_TRANSACTION", subscriptionId: null });
  });

  it("raises FAILED_TRANSACTION for a late settlement and ESTIMATE_MISMATCH for a reported actual cost", () => {
    const { observer, raised } = recordingAlerts();
    const facts = { requestId: "r", operation: "Mutation.skipTrace", subscriptionId: SUB, creditType: "skiptrace", actorId: "u", entryId: "e" };
    observer.lateSettlement({ ...facts, charged: 6 });
    observer.actualCostMismatch({ ...facts, charged: 6, actual: 9 });
    expect(raised.map((a) => a.kind)).toEqual(["FAILED_TRANSACTION", "ESTIMATE_MISMATCH"]);
    expect(raised[0].details).toMatchObject({ stage: "late-settlement", amount: 6 });
    expect(raised[1].details).toMatchObject({ charged: 6, actual: 9, difference: 3, operation: "Mutation.skipTrace" });
  });

  it("schedules a spike check for each paid charge and does nothing else on the charge path", () => {
    const { observer, raised, noted } = recordingAlerts();
    observer.charged(charged({ charged: 2 }));
    observer.charged(charged({ charged: 0, adminOverride: true }));
    observer.refused({ requestId: "r", operation: "Mutation.runAiTask", code: "FORBIDDEN", message: "m" });
    expect(noted).toEqual([SUB]);
    expect(raised).toEqual([]);
  });
});

describe("spike rule", () => {
  const rule = { factor: 5, minCredits: 100 };
  it("needs both more than factor × the baseline average and the floor", () => {
    expect(isUsageSpike({ recentCredits: 600, baselineCredits: 0, baselineAveragePerWindow: 100 }, rule)).toBe(true);
    expect(isUsageSpike({ recentCredits: 500, baselineCredits: 0, baselineAveragePerWindow: 100 }, rule)).toBe(false);
    expect(isUsageSpike({ recentCredits: 99, baselineCredits: 0, baselineAveragePerWindow: 1 }, rule)).toBe(false);
    expect(isUsageSpike({ recentCredits: 100, baselineCredits: 0, baselineAveragePerWindow: 0 }, rule)).toBe(true);
  });

  it("names windows the way the settings are written", () => {
    expect(formatDuration(300_000)).toBe("5m");
    expect(formatDuration(86_400_000)).toBe("24h");
    expect(formatDuration(90_000)).toBe("90s");
  });
});

describe("spike check scheduling", () => {
  const CHECK_SETTINGS = { windowMs: 300_000, baselineMs: 86_400_000, factor: 5, minCredits: 100, checkDelayMs: 1_000 };

  /** A detector whose check is `check` instead of reading the database. */
  function detectorChecking(clock: FakeClock, check: (subscriptionId: string) => Promise<void>) {
    const alerts = new AlertService({ db: {} as Database, logger: silent, clock });
    class StubDetector extends SpikeDetector {
      override async check(subscriptionId: string) {
        await check(subscriptionId);
        return undefined;
      }
    }
    return { alerts, detector: new StubDetector({ db: {} as Database, clock, alerts, logger: silent, settings: CHECK_SETTINGS }) };
  }

  /** A detector whose check only counts, and can be held open to simulate a slow query. */
  function countingDetector(clock: FakeClock) {
    const checks: string[] = [];
    let release: (() => void) | undefined;
    let hold = false;
    const { alerts, detector } = detectorChecking(clock, async (subscriptionId) => {
      checks.push(subscriptionId);
      if (hold) await new Promise<void>((resolve) => (release = resolve));
    });
    return {
      detector,
      alerts,
      checks,
      holdChecks: () => (hold = true),
      releaseCheck: () => {
        hold = false;
        release?.();
      },
    };
  }

  it("coalesces many charges into one check per subscription, after the delay", async () => {
    const clock = new FakeClock();
    const { detector, alerts, checks } = countingDetector(clock);
    for (let i = 0; i < 50; i++) detector.noteCharge(SUB);
    detector.noteCharge("other");
    expect(checks).toEqual([]);
    clock.advance(999);
    expect(checks).toEqual([]);
    clock.advance(1);
    await alerts.flush();
    expect(checks.sort()).toEqual([SUB, "other"].sort());
    expect(detector.pendingChecks).toBe(0);
  });

  it("checks once more when charges arrive while a check runs", async () => {
    const clock = new FakeClock();
    const { detector, alerts, checks, holdChecks, releaseCheck } = countingDetector(clock);
    holdChecks();
    detector.noteCharge(SUB);
    clock.advance(1_000);
    expect(checks).toEqual([SUB]);
    detector.noteCharge(SUB);
    detector.noteCharge(SUB);
    releaseCheck();
    await alerts.flush();
    expect(clock.pendingTimers).toBe(1);
    clock.advance(1_000);
    await alerts.flush();
    expect(checks).toEqual([SUB, SUB]);
  });

  it("runs at most MAX_CHECKS_RUNNING checks at once, the others in the order they fell due", async () => {
    const clock = new FakeClock();
    const started: string[] = [];
    const finish: (() => void)[] = [];
    let running = 0;
    let mostRunning = 0;
    const { alerts, detector } = detectorChecking(clock, async (subscriptionId) => {
      started.push(subscriptionId);
      mostRunning = Math.max(mostRunning, ++running);
      await new Promise<void>((resolve) => finish.push(resolve));
      running--;
    });
    // Subscriptions charged together fall due together.
    const subscriptions = Array.from({ length: 7 }, (_, i) => `sub-${i}`);
    for (const id of subscriptions) detector.noteCharge(id);
    clock.advance(1_000);
    expect(started).toEqual(subscriptions.slice(0, MAX_CHECKS_RUNNING));
    while (started.length < subscriptions.length || finish.length > 0) {
      finish.shift()?.();
      await new Promise((resolve) => setImmediate(resolve));
    }
    await alerts.flush();
    expect(started).toEqual(subscriptions);
    expect(mostRunning).toBe(MAX_CHECKS_RUNNING);
    expect(detector.pendingChecks).toBe(0);
  });

  it("cancels scheduled checks on close", () => {
    const clock = new FakeClock();
    const { detector, checks } = countingDetector(clock);
    detector.noteCharge(SUB);
    detector.close();
    clock.advance(10_000);
    detector.noteCharge(SUB);
    expect(checks).toEqual([]);
    expect(clock.pendingTimers).toBe(0);
  });
});

describe("alert service", () => {
  it("never throws when storing fails: the alert is logged with stored=false", async () => {
    const { logger, lines } = capturingLogger();
    // As Drizzle reports a lost connection: its wrapper names the statement, the cause says why.
    const failingDb = {
      execute: async () => {
        throw new Error("Failed query: insert into credit_alerts … params: …", { cause: Object.assign(new Error("Connection terminated unexpectedly"), { code: "ECONNRESET" }) });
      },
    } as unknown as Database;
    const alerts = new AlertService({ db: failingDb, logger, clock: new FakeClock() });
    expect(() => alerts.raise({ kind: "ESTIMATE_MISMATCH", subscriptionId: SUB, message: "differs", details: { actual: 2 } })).not.toThrow();
    await alerts.flush();
    // An outside audit: the line said `"err":{"type":"Error"}` and nothing of why.
    expect(lines.find((l) => l.event === "alerts.store_failed")).toMatchObject({
      kind: "ESTIMATE_MISMATCH",
      subscriptionId: SUB,
      err: { type: "Error", cause: "Connection terminated unexpectedly (ECONNRESET)" },
    });
    expect(lines.find((l) => l.event === "credits.alert")).toMatchObject({ kind: "ESTIMATE_MISMATCH", stored: false, msg: "differs" });
  });
});

describe("alert webhook", () => {
  let server: Server | undefined;
  afterEach(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

  /** A receiver that answers with the given statuses in turn (the last one from then on). */
  async function receiver(statuses: number[]) {
    const bodies: unknown[] = [];
    const waiters: { count: number; resolve: () => void }[] = [];
    server = createServer((req, res) => {
      let text = "";
      req.on("data", (c) => (text += c));
      req.on("end", () => {
        bodies.push({ contentType: req.headers["content-type"], method: req.method, body: JSON.parse(text) });
        res.statusCode = statuses[Math.min(bodies.length - 1, statuses.length - 1)];
        res.end();
        for (const w of waiters.filter((w) => bodies.length >= w.count)) w.resolve();
      });
    });
    await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/secret-token-123`;
    const received = (count: number) =>
      new Promise<void>((resolve) => {
        if (bodies.length >= count) resolve();
        else waiters.push({ count, resolve });
      });
    return { url, bodies, received };
  }

  it("posts the alert as JSON and retries after a 500", async () => {
    const { url, bodies, received } = await receiver([500, 200]);
    const { logger, lines } = capturingLogger();
    let failures = 0;
    const webhook = new WebhookNotifier({ url, logger, retry: { baseDelayMs: 5 }, onFailure: () => failures++ });
    webhook.send({ id: "a1", kind: "USAGE_SPIKE", message: "spike" });
    await received(2);
    await webhook.close();
    expect(bodies).toHaveLength(2);
    for (const b of bodies) expect(b).toEqual({ contentType: "application/json", method: "POST", body: { id: "a1", kind: "USAGE_SPIKE", message: "spike" } });
    expect(failures).toBe(0);
    // The failed attempt is logged with its cause, at warn (an outside audit: only a give-up was).
    expect(lines.filter((l) => l.event === "alerts.webhook_retry")).toEqual([
      expect.objectContaining({ level: 40, alertId: "a1", kind: "USAGE_SPIKE", attempt: 1, problem: "HTTP 500" }),
    ]);
    expect(JSON.stringify(lines)).not.toContain("secret-token-123");
  });

  it("gives up after the bounded attempts", async () => {
    const { url, bodies } = await receiver([503]);
    const { logger, lines } = capturingLogger();
    let failures = 0;
    const webhook = new WebhookNotifier({ url, logger, retry: { attempts: 3, baseDelayMs: 2 }, onFailure: () => failures++ });
    webhook.send({ id: "a2" });
    await webhook.close(10_000);
    expect(bodies).toHaveLength(3);
    expect(failures).toBe(1);
    const failed = lines.find((l) => l.event === "alerts.webhook_failed");
    expect(failed).toMatchObject({ problem: "HTTP 503" });
    expect(JSON.stringify(lines)).not.toContain("secret-token-123");
  });

  it("retries a 4xx answer too: a receiver that answers 401, then 200, gets the alert", async () => {
    const { url, bodies, received } = await receiver([401, 200]);
    let failures = 0;
    const webhook = new WebhookNotifier({ url, logger: silent, retry: { attempts: 3, baseDelayMs: 2 }, onFailure: () => failures++ });
    webhook.send({ id: "a3" });
    await received(2);
    await webhook.close(10_000);
    expect(bodies).toHaveLength(2);
    expect(failures).toBe(0);
  });

  it("takes a redirect for a failed delivery: not followed, retried, logged with the alert it is about", async () => {
    // Found by an outside audit: a 302 was followed as a GET without body or signature, and counted as delivered.
    const requests: { method?: string; url?: string }[] = [];
    server = createServer((req, res) => {
      requests.push({ method: req.method, url: req.url });
      req.resume();
      req.on("end", () => {
        if (req.url === "/hooks") res.writeHead(302, { location: "/elsewhere" });
        res.end();
      });
    });
    await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
    const { logger, lines } = capturingLogger();
    let failures = 0;
    const webhook = new WebhookNotifier({ url, logger, retry: { attempts: 3, baseDelayMs: 2 }, onFailure: () => failures++ });
    webhook.send({ id: "a5", kind: "LOW_BALANCE", subscriptionId: SUB, message: "low" });
    await webhook.close(10_000);
    expect(requests).toEqual([1, 2, 3].map(() => ({ method: "POST", url: "/hooks" })));
    expect(failures).toBe(1);
    expect(lines.find((l) => l.event === "alerts.webhook_failed")).toMatchObject({
      problem: expect.stringMatching(/^HTTP 302 \(a redirect, not followed/),
      alert: { id: "a5", kind: "LOW_BALANCE", subscriptionId: SUB },
    });
  });

  it("takes a 304 for a failed delivery without calling it a redirect (it has nowhere to lead)", async () => {
    server = createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        res.writeHead(304);
        res.end();
      });
    });
    await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
    const { logger, lines } = capturingLogger();
    const webhook = new WebhookNotifier({ url, logger, retry: { attempts: 1, baseDelayMs: 2 } });
    webhook.send({ id: "a6", kind: "LOW_BALANCE", subscriptionId: SUB, message: "low" });
    await webhook.close(10_000);
    expect(lines.find((l) => l.event === "alerts.webhook_failed")).toMatchObject({ problem: "HTTP 304" });
  });

  it("stops retrying when closed", async () => {
    const { url, bodies, received } = await receiver([500]);
    const webhook = new WebhookNotifier({ url, logger: silent, retry: { attempts: 5, baseDelayMs: 60_000 } });
    webhook.send({ id: "a4" });
    await received(1);
    await webhook.close(0);
    expect(webhook.pending).toBe(0);
    expect(bodies).toHaveLength(1);
  });
});
