/**
 * The scenarios that go through the server, driven by autocannon from this process. Every scenario
 * sends the same shape of request (a POST with a JSON body and a bearer token, rotating over the
 * same prebuilt set), so the only difference between two scenarios is what the server does.
 */
import type { PushFigures } from "./live-subscribers.js";
import autocannon from "autocannon";
import type { BenchData, BenchSubscription } from "./database.js";

export interface PreparedRequest {
  body: Buffer;
  authorization: string;
}

export interface HttpScenario {
  name: string;
  description: string;
  requests: PreparedRequest[];
  /** Checks one response body before the load starts, so a broken scenario fails loudly instead of measuring errors. */
  check(body: any): string | undefined;
}

export interface Measurement {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  /** Non-2xx answers, socket errors and timeouts: a run with any of these is not a measurement. */
  failures: number;
  durationSeconds: number;
  /** metered-live only: events pushed to the live-balance subscribers during the run. */
  push?: PushFigures;
  /** metered-live only: the server's RSS at the end of the run, subscribers connected. */
  rssMb?: number;
  /** metered-live only: its RSS right after full collections, subscribers still connected: what they keep. */
  rssCollectedMb?: number;
}

/**
 * Holds 4 credits and finds fewer leads (the simulator is deterministic: "bench 2" finds 2 of 4), so
 * every call settles at its actual cost with a RELEASE of the rest, as most real calls do.
 */
const METERED_QUERY = `mutation Metered($s: ID!) { searchLeads(subscriptionId: $s, input: { query: "bench 4", limit: 4 }) { total } }`;
/** The same metered field three times in one operation: one hold statement, one settlement statement. */
const METERED_THREE_QUERY = `mutation MeteredThree($s: ID!) {
  a: searchLeads(subscriptionId: $s, input: { query: "bench 4", limit: 4 }) { total }
  b: searchLeads(subscriptionId: $s, input: { query: "bench 4", limit: 4 }) { total }
  c: searchLeads(subscriptionId: $s, input: { query: "bench 4", limit: 4 }) { total }
}`;
const NOOP_QUERY = `mutation Noop { benchNoop }`;
const TOUCH_QUERY = `mutation Touch($s: ID!) { benchTouchBalance(subscriptionId: $s, creditType: "leads") }`;
/** Three metered fields, each with its own estimator: what a client previews before a multi-field call. */
const PREVIEWED_DOCUMENT = `mutation Work($s: ID!) {
  runAiTask(subscriptionId: $s, input: { prompt: "Summarise this listing for a buyer", maxTokens: 300 }) { output }
  searchLeads(subscriptionId: $s, input: { query: "roofers", location: "Austin", limit: 20 }) { total }
  skipTrace(subscriptionId: $s, input: { records: [{ firstName: "Ada", lastName: "Lovelace", address: "1 Main St" }] }) { matches { recordIndex } }
}`;
const PREVIEW_QUERY = `query Preview($input: CreditPreviewInput!) { creditPreview(input: $input) { totals { type amount } sufficient } }`;

function prepare(query: string, variables: Record<string, unknown> | undefined, token: string): PreparedRequest {
  return { body: Buffer.from(JSON.stringify(variables ? { query, variables } : { query })), authorization: `Bearer ${token}` };
}

function errorsOf(body: any): string | undefined {
  if (body?.errors?.length) return JSON.stringify(body.errors);
  return undefined;
}

/** The answer carries `fields` charges, each held at 4 and settled below it with a release. */
function settledWithRelease(body: any, fields: number): string | undefined {
  const charges = body?.extensions?.credits?.charges;
  if (!Array.isArray(charges) || charges.length !== fields) return `expected ${fields} charges in extensions.credits`;
  const bad = charges.find((c: any) => c.charged !== 4 || !(c.released > 0) || c.cost !== c.charged - c.released);
  return bad ? `a charge did not settle at its actual cost with a release: ${JSON.stringify(bad)}` : undefined;
}

export function httpScenarios(data: BenchData, tokens: Map<string, string>): HttpScenario[] {
  const tokenOf = (s: BenchSubscription) => tokens.get(s.ownerId) as string;
  const spread = data.subscriptions;
  return [
    {
      name: "noop",
      description: "unmetered mutation that does nothing (the framework's ceiling)",
      requests: spread.map((s) => prepare(NOOP_QUERY, undefined, tokenOf(s))),
      check: (body) => errorsOf(body) ?? (body?.data?.benchNoop === true ? undefined : "benchNoop did not answer true"),
    },
    {
      name: "bare-sql",
      description: "unmetered mutation running one bare UPDATE … RETURNING on a distinct balance row",
      requests: spread.map((s) => prepare(TOUCH_QUERY, { s: s.id }, tokenOf(s))),
      check: (body) => errorsOf(body) ?? (typeof body?.data?.benchTouchBalance === "number" ? undefined : "no balance returned"),
    },
    {
      name: "metered",
      description: `metered mutation (searchLeads limit 4: holds 4, settles at the leads found, releases the rest) across ${spread.length} subscriptions and tokens`,
      requests: spread.map((s) => prepare(METERED_QUERY, { s: s.id }, tokenOf(s))),
      check: (body) => errorsOf(body) ?? settledWithRelease(body, 1),
    },
    {
      name: "metered-three",
      description: "three metered fields (the same search, aliased) in one operation: one hold, one settlement statement",
      requests: spread.map((s) => prepare(METERED_THREE_QUERY, { s: s.id }, tokenOf(s))),
      check: (body) => errorsOf(body) ?? settledWithRelease(body, 3),
    },
    {
      name: "metered-hot",
      description: "the same metered mutation, every connection on one subscription",
      requests: [prepare(METERED_QUERY, { s: data.hot.id }, tokenOf(data.hot))],
      check: (body) => errorsOf(body) ?? settledWithRelease(body, 1),
    },
    {
      name: "preview",
      description: "creditPreview of a three-field document",
      requests: spread.map((s) =>
        prepare(PREVIEW_QUERY, { input: { subscriptionId: s.id, query: PREVIEWED_DOCUMENT, variables: { s: s.id } } }, tokenOf(s)),
      ),
      check: (body) => errorsOf(body) ?? (Array.isArray(body?.data?.creditPreview?.totals) ? undefined : "no totals in creditPreview"),
    },
  ];
}

/** Sends the scenario's first request once and returns what is wrong with the answer, if anything. */
export async function probeScenario(url: string, scenario: HttpScenario): Promise<string | undefined> {
  const request = scenario.requests[0];
  const res = await fetch(`${url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: request.authorization },
    body: new Uint8Array(request.body),
  });
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return `HTTP ${res.status}, not JSON: ${text.slice(0, 300)}`;
  }
  const problem = scenario.check(body);
  return problem ? `HTTP ${res.status}: ${problem.slice(0, 500)}` : undefined;
}

/** Runs one scenario for `seconds` at `connections` concurrent connections, rotating over its requests. */
export async function loadScenario(url: string, scenario: HttpScenario, connections: number, seconds: number): Promise<Measurement> {
  let next = 0;
  const pool = scenario.requests;
  const result = await autocannon({
    url: `${url}/graphql`,
    connections,
    duration: seconds,
    method: "POST",
    headers: { "content-type": "application/json" },
    timeout: 30,
    requests: [
      {
        setupRequest: (request) => {
          const chosen = pool[next++ % pool.length];
          return { ...request, body: chosen.body, headers: { ...request.headers, authorization: chosen.authorization } };
        },
      },
    ],
  });
  return {
    requestsPerSecond: result.requests.total / result.duration,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    requests: result.requests.total,
    failures: result.non2xx + result.errors + result.timeouts,
    durationSeconds: result.duration,
  };
}
