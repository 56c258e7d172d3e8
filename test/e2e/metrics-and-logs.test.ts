/**
 * GET /metrics and the audit log over HTTP: the counters move by exactly what the metered calls
 * charged, refunded and refused; every charge, refund and refusal is one structured log line with
 * its request id; tokens never reach a log line. On PGlite and PostgreSQL.
 */
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp, type App } from "../../src/app/create-app.js";
import { loadConfig } from "../../src/config/config.js";
import { createLogger } from "../../src/observability/logger.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { fundedSubscription, postGraphQL, userToken } from "../helpers/test-app.js";

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text format into samples. */
function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!match) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, val] of (match[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[key] = val;
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return samples;
}

/** Sum of the samples named `name` whose labels include `labels`. */
function total(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

async function scrape(url: string): Promise<{ contentType: string; text: string; samples: Sample[] }> {
  const res = await fetch(`${url}/metrics`);
  expect(res.status).toBe(200);
  const text = await res.text();
  return { contentType: res.headers.get("content-type") ?? "", text, samples: parseMetrics(text) };
}

const RUN_AI = `mutation ($s: ID!, $prompt: String!, $maxTokens: Int) {
  runAiTask(subscriptionId: $s, input: { prompt: $prompt, maxTokens: $maxTokens }) { output }
}`;
const SEARCH_LEADS = `mutation ($s: ID!, $limit: Int) { searchLeads(subscriptionId: $s, input: { query: "plumbers", limit: $limit }) { total } }`;

describe.each(BACKENDS)("metrics and audit logs on %s", (backend) => {
  let database: TestDatabase;
  let app: App;
  let other: App;
  let url: string;
  let otherUrl: string;
  const lines: Record<string, any>[] = [];
  const rawLog: string[] = [];

  beforeAll(async () => {
    database = await createTestDatabase(backend);
    const stream = new Writable({
      write(chunk, _enc, done) {
        rawLog.push(String(chunk));
        for (const line of String(chunk).split("\n")) if (line.trim()) lines.push(JSON.parse(line));
        done();
      },
    });
    const config = loadConfig({ PGLITE_DIR: "memory://", LOG_LEVEL: "info", NODE_ENV: "test", SIMULATE_FAILURES: "1" });
    app = await createApp(config, { database, logger: createLogger("info", stream) });
    url = await app.listen(0, "127.0.0.1");
    // A second app in the same process: its metrics registry must be its own.
    other = await createApp(config, { database, logger: createLogger("silent") });
    otherUrl = await other.listen(0, "127.0.0.1");
  });
  afterAll(async () => {
    await app?.close();
    await other?.close();
    await database?.dispose();
  });

  it("moves the counters by exactly what was charged, refunded and refused, and logs each event", async () => {
    const owner = `metrics-owner-${backend}`;
    const token = await userToken(owner);
    const subscriptionId = await fundedSubscription(database, owner, { ai: 3, leads: 100 });
    const gql = (query: string, variables: Record<string, unknown>, headers?: Record<string, string>) =>
      postGraphQL(`${url}/graphql`, query, variables, { token, headers });

    const before = await scrape(url);
    const otherBefore = await scrape(otherUrl);

    // A charge: ceil((ceil(5/4) + 1500) / 1000) = 2 ai credits.
    const ok = await gql(RUN_AI, { s: subscriptionId, prompt: "hello", maxTokens: 1500 }, { "x-request-id": `charge-${backend}` });
    expect(ok.body.errors).toBeUndefined();
    expect(ok.status).toBe(200);
    // Held 2, settled at what the simulated model used: 1 credit, the other released.
    expect(ok.body.extensions?.credits.charges[0]).toMatchObject({ charged: 2, actual: 1, released: 1, cost: 1, refunded: 0 });

    // A system failure: 7 leads charged, then refunded whole.
    const failed = await gql(SEARCH_LEADS, { s: subscriptionId, limit: 7 }, { "x-simulate-failure": "system", "x-request-id": `refund-${backend}` });
    expect(failed.body.errors?.[0].extensions.code).toBe("INTERNAL_SERVER_ERROR");
    expect(failed.body.extensions?.credits.charges[0]).toMatchObject({ charged: 7, refunded: 7 });

    // A refusal: 4 ai credits are needed, 2 are left.
    const refused = await gql(RUN_AI, { s: subscriptionId, prompt: "hello", maxTokens: 3500 }, { "x-request-id": `refuse-${backend}` });
    expect(refused.status).toBe(402);

    // A token that fails verification: refused before anything else, and never logged.
    const badToken = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtYWxsb3J5In0.not-a-valid-signature-xyz";
    const unauthenticated = await postGraphQL(`${url}/graphql`, RUN_AI, { s: subscriptionId, prompt: "hi" }, { token: badToken });
    expect(unauthenticated.status).toBe(401);

    // An unmetered query.
    const viewer = await gql(`{ viewer { id } }`, {});
    expect(viewer.status).toBe(200);

    const after = await scrape(url);
    const delta = (name: string, labels: Record<string, string> = {}) => total(after.samples, name, labels) - total(before.samples, name, labels);

    expect(after.contentType).toContain("text/plain");
    expect(delta("credits_charged_total", { type: "ai", operation: "Mutation.runAiTask" })).toBe(2);
    expect(delta("credits_charged_total", { type: "leads", operation: "Mutation.searchLeads" })).toBe(7);
    expect(delta("credits_charged_total")).toBe(9);
    expect(delta("credits_held_total")).toBe(9);
    expect(delta("credits_cost_total", { type: "ai", operation: "Mutation.runAiTask" })).toBe(1);
    expect(delta("credits_cost_total")).toBe(1);
    expect(delta("credits_released_total", { type: "ai", operation: "Mutation.runAiTask" })).toBe(1);
    // One metered call settled at actual 1 of an estimate of 2: one ratio observation of 0.5.
    expect(delta("credits_actual_estimated_ratio_count", { operation: "Mutation.runAiTask" })).toBe(1);
    expect(delta("credits_actual_estimated_ratio_sum", { operation: "Mutation.runAiTask" })).toBe(0.5);
    expect(delta("credits_refunded_total", { type: "leads", operation: "Mutation.searchLeads" })).toBe(7);
    expect(delta("credits_refunded_total")).toBe(7);
    expect(delta("credits_refused_total", { code: "INSUFFICIENT_CREDITS" })).toBe(1);
    expect(delta("credits_refused_total", { code: "UNAUTHENTICATED" })).toBe(1);
    expect(delta("credits_refused_total")).toBe(2);
    expect(delta("credits_estimator_fallbacks_total")).toBe(0);
    expect(delta("credits_debit_duration_seconds_count")).toBe(2);
    expect(delta("graphql_requests_total", { operation_type: "mutation", outcome: "success" })).toBe(1);
    expect(delta("graphql_requests_total", { operation_type: "mutation", outcome: "error" })).toBe(3);
    expect(delta("graphql_requests_total", { operation_type: "query", outcome: "success" })).toBe(1);
    expect(delta("graphql_request_duration_seconds_count")).toBe(5);
    // Process metrics are there; no label carries an id.
    expect(total(after.samples, "process_resident_memory_bytes")).toBeGreaterThan(0);
    expect(after.text).not.toContain(subscriptionId);
    expect(after.text).not.toContain(`charge-${backend}`);
    expect(after.text).not.toContain(owner);

    // The other app counted nothing of this.
    const otherAfter = await scrape(otherUrl);
    expect(total(otherAfter.samples, "credits_charged_total")).toBe(total(otherBefore.samples, "credits_charged_total"));
    expect(total(otherAfter.samples, "graphql_requests_total")).toBe(total(otherBefore.samples, "graphql_requests_total"));

    // One structured line per charge, refund and refusal, with request id, subscription, operation, type and amount.
    const event = (name: string, requestId: string) => lines.filter((l) => l.event === name && l.requestId === requestId);
    expect(event("credits.released", `charge-${backend}`)).toEqual([
      expect.objectContaining({ subscriptionId, operation: "Mutation.runAiTask", creditType: "ai", charged: 2, actual: 1, cost: 1, released: 1 }),
    ]);
    expect(event("credits.held", `charge-${backend}`)).toEqual([
      expect.objectContaining({ subscriptionId, operation: "Mutation.runAiTask", creditType: "ai", charged: 2, level: 30 }),
    ]);
    expect(event("credits.held", `refund-${backend}`)).toEqual([
      expect.objectContaining({ subscriptionId, operation: "Mutation.searchLeads", creditType: "leads", charged: 7 }),
    ]);
    expect(event("credits.refunded", `refund-${backend}`)).toEqual([
      expect.objectContaining({ subscriptionId, operation: "Mutation.searchLeads", creditType: "leads", refunded: 7, reason: "system error" }),
    ]);
    // The ledger's reason names no error; the log line still says which error it was.
    expect(event("credits.refunded", `refund-${backend}`)[0].error).toMatchObject({ type: "Error", message: expect.any(String) });
    expect(event("credits.refused", `refuse-${backend}`)).toEqual([
      expect.objectContaining({ subscriptionId, operation: "Mutation.runAiTask", creditType: "ai", code: "INSUFFICIENT_CREDITS", required: 4, available: 2 }),
    ]);
    expect(lines.some((l) => l.event === "credits.refused" && l.code === "UNAUTHENTICATED")).toBe(true);

    // Secrets never appear: not the tokens, not the Authorization header.
    const everything = rawLog.join("");
    expect(everything.length).toBeGreaterThan(0);
    for (const secret of [token, badToken, "eyJhbGciOi", "Bearer "]) expect(everything).not.toContain(secret);
    expect(everything.toLowerCase()).not.toMatch(/"authorization"\s*:\s*"(?!\[redacted\])/);
  });
});
