/**
 * A graceful stop under traffic (app.close(), what SIGTERM runs). An outside audit did rolling
 * deploys behind a round-robin balancer: under steady traffic the drain's quiet moment never came,
 * so every stop waited the whole grace and then cut the calls still running (3-second calls, and
 * fast ones accepted in its last instant); /health said 200 ok throughout, so a balancer never took
 * the instance out; and a graphql-ws reconnect reaching the stopping instance got Apollo's CSRF 400.
 *
 * Now: from the signal on /health says 503 "stopping"; once the grace is over the server stops
 * listening, refuses what arrives on a connection it still holds (503, Retry-After, nothing run or
 * charged), and gives the calls already running a second period to finish before anything is cut;
 * close() resolves after them, so the credits core never closes under a running call. A WebSocket
 * upgrade to a stopping server is told 503 "stopping", not the CSRF 400.
 */
import { request, type IncomingHttpHeaders } from "node:http";
import { connect, type Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { sql } from "drizzle-orm";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createApp, type App } from "../../src/app/create-app.js";
import { loadConfig } from "../../src/config/config.js";
import { queryRows } from "../../src/db/database.js";
import { auditLedger } from "../../src/ledger/audit.js";
import { createLogger } from "../../src/observability/logger.js";
import type { LeadSearchRequest, ProviderCallOptions } from "../../src/providers/providers.js";
import { SimulatedProviders } from "../../src/providers/simulated/simulated-providers.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { ledgerState } from "../helpers/ledger-state.js";
import { captureLogLines } from "../helpers/log-lines.js";
import { fundedSubscription, userToken } from "../helpers/test-app.js";

/** The stop's timings here: a short grace and quiet moment, and room for the slow call to finish. */
const STOP = { graceMs: 300, quietMs: 50, finishMs: 5_000 };

/** A promise and the function that resolves it. */
function signal(): { promise: Promise<void>; fire: () => void } {
  let fire!: () => void;
  const promise = new Promise<void>((resolve) => (fire = resolve));
  return { promise, fire };
}

/** The simulators, except that a lead search for "slow" says it started and waits to be let go. */
class GatedSearch extends SimulatedProviders {
  started = signal();
  release = signal();

  override async searchLeads(req: LeadSearchRequest, options: ProviderCallOptions) {
    if (req.query === "slow") {
      this.started.fire();
      await this.release.promise;
    }
    return super.searchLeads(req, options);
  }
}

const SEARCH = `mutation($s: ID!, $q: String!) { searchLeads(subscriptionId: $s, input: { query: $q, limit: 2 }) { leads { name } } }`;

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

/** One request on its own connection (no keep-alive pool); a connection the server cuts rejects. */
function send(url: string, path: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: target.hostname, port: target.port, path, method: options.method ?? "GET", agent: false, headers: options.headers },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk) => (text += chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
        res.on("error", reject);
      },
    );
    // A 101 (the upgrade accepted) is an answer too.
    req.on("upgrade", (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, headers: res.headers, text: "" });
    });
    req.on("error", reject);
    req.end(options.body);
  });
}

const searchBody = (subscriptionId: string, query: string) => JSON.stringify({ query: SEARCH, variables: { s: subscriptionId, q: query } });

const UPGRADE_HEADERS = {
  connection: "Upgrade",
  upgrade: "websocket",
  "sec-websocket-version": "13",
  "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
  "sec-websocket-protocol": "graphql-transport-ws",
};

/** The payload of a chunked HTTP/1.1 body. */
function dechunked(body: string): string {
  let text = "";
  let at = 0;
  for (;;) {
    const lineEnd = body.indexOf("\r\n", at);
    const size = parseInt(body.slice(at, lineEnd), 16);
    if (!(size > 0)) return text;
    text += body.slice(lineEnd + 2, lineEnd + 2 + size);
    at = lineEnd + 2 + size + 2;
  }
}

/** Reads a raw HTTP/1.1 response from `socket` until the server closes the connection. */
function rawResponse(socket: Socket): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let raw = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk) => (raw += chunk));
    socket.on("error", reject);
    socket.on("close", () => {
      const [head, ...rest] = raw.split("\r\n\r\n");
      const [statusLine, ...headerLines] = head.split("\r\n");
      const headers: IncomingHttpHeaders = {};
      for (const line of headerLines) {
        const at = line.indexOf(":");
        headers[line.slice(0, at).trim().toLowerCase()] = line.slice(at + 1).trim();
      }
      const body = rest.join("\r\n\r\n");
      resolve({ status: Number(statusLine.split(" ")[1] ?? 0), headers, text: headers["transfer-encoding"] === "chunked" ? dechunked(body) : body });
    });
  });
}

describe.each(BACKENDS)("a graceful stop under traffic on %s", (backend) => {
  let database: TestDatabase;
  let app: App | undefined;
  /** The test's own stop, awaited rather than started again after a failure. */
  let stopping: Promise<unknown> | undefined;
  let url: string;
  let token: string;
  let providers: GatedSearch;
  const captured = captureLogLines();

  beforeAll(async () => {
    database = await createTestDatabase(backend);
    token = await userToken("graceful-stop-owner");
  });
  afterAll(async () => {
    await database?.dispose();
  });
  afterEach(async () => {
    providers?.release.fire();
    await (stopping ?? app?.close());
    app = undefined;
    stopping = undefined;
  });

  async function start(): Promise<void> {
    const config = loadConfig({ PGLITE_DIR: "memory://", LOG_LEVEL: "info", NODE_ENV: "test", REQUEST_LIMIT: "1000000/1m" });
    providers = new GatedSearch();
    app = await createApp(config, { database, logger: createLogger(config.LOG_LEVEL, captured.destination), providers });
    url = await app.listen(0, "127.0.0.1");
  }

  const failedTransactionAlerts = async () =>
    Number((await queryRows<{ n: number }>(database.db, sql`select count(*)::int as n from credit_alerts where kind = 'FAILED_TRANSACTION'`))[0].n);

  it("says 503 stopping on /health from the stop on, and refuses a WebSocket upgrade with 503, not Apollo's CSRF 400", async () => {
    await start();
    const before = await send(url, "/health");
    expect([before.status, JSON.parse(before.text).status]).toEqual([200, "ok"]);
    expect((await send(url, "/graphql", { headers: UPGRADE_HEADERS })).status).toBe(101);

    const subscriptionId = await fundedSubscription(database, "graceful-stop-owner", { leads: 100 });
    const headers = { "content-type": "application/json", authorization: `Bearer ${token}` };
    // A call still running keeps the server draining while the stop is looked at.
    const slow = send(url, "/graphql", { method: "POST", headers, body: searchBody(subscriptionId, "slow") });
    await providers.started.promise;
    const stopped = (stopping = app!.close(STOP));
    await sleep(50);

    const health = await send(url, "/health");
    expect(health.status).toBe(503);
    expect(JSON.parse(health.text)).toMatchObject({ status: "stopping", database: "up", backend: database.kind });
    const head = await send(url, "/health", { method: "HEAD" });
    expect(head.status).toBe(503);

    const upgrade = await send(url, "/graphql", { headers: UPGRADE_HEADERS });
    expect(upgrade.status).toBe(503);
    expect(upgrade.headers).toMatchObject({ connection: "close", "retry-after": "1" });
    expect(upgrade.headers["content-type"]).toMatch(/^text\/plain/);
    expect(upgrade.text).toMatch(/stopping/i);
    expect(upgrade.text).not.toMatch(/forgery/i);

    providers.release.fire();
    expect((await slow).status).toBe(200);
    await stopped;
  }, 30_000);

  it("lets a call running past the grace finish, charged once; refuses a request arriving on a kept connection with 503 and Retry-After", async () => {
    await start();
    const subscriptionId = await fundedSubscription(database, "graceful-stop-owner", { leads: 100 });
    const headers = { "content-type": "application/json", authorization: `Bearer ${token}` };
    const slow = send(url, "/graphql", { method: "POST", headers, body: searchBody(subscriptionId, "slow") });
    await providers.started.promise;
    // A connection whose request is under way (its first bytes sent) when the grace ends.
    const kept = connect(Number(new URL(url).port), "127.0.0.1");
    await new Promise<void>((resolve) => kept.once("connect", () => resolve()));
    const keptAnswer = rawResponse(kept);
    kept.write("POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    await sleep(50);

    const stopStarted = performance.now();
    let stoppedAt: number | undefined;
    const stopped = (stopping = app!.close(STOP).then(() => (stoppedAt = performance.now())));
    // During the grace everything else is served as before (each connection then closed).
    const during = await send(url, "/graphql", { method: "POST", headers, body: JSON.stringify({ query: "{ viewer { id } }" }) });
    expect(during.status).toBe(200);
    expect(during.headers.connection).toBe("close");

    // The grace is over: the server no longer listens, and the call still runs.
    await sleep(STOP.graceMs + 300 - (performance.now() - stopStarted));
    await expect(send(url, "/health")).rejects.toThrow();
    expect(stoppedAt).toBeUndefined();

    // The rest of the request on the kept connection: refused, nothing run or charged.
    const late = searchBody(subscriptionId, "late");
    kept.write(`authorization: Bearer ${token}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(late)}\r\n\r\n${late}`);
    const refused = await keptAnswer;
    expect(refused.status).toBe(503);
    expect(refused.headers).toMatchObject({ connection: "close", "retry-after": "1" });
    const body = JSON.parse(refused.text);
    expect(body.errors).toHaveLength(1);
    expect(body.errors[0].message).toMatch(/stopping/i);
    expect(body.errors[0].extensions).toMatchObject({ code: "INTERNAL_SERVER_ERROR" });
    expect(body.errors[0].extensions.requestId).toEqual(expect.any(String));

    // The slow call, started before the grace ended, finishes; close() resolves only after it.
    providers.release.fire();
    const answer = await slow;
    expect(answer.status).toBe(200);
    const result = JSON.parse(answer.text);
    expect(result.errors).toBeUndefined();
    expect(Array.isArray(result.data.searchLeads.leads)).toBe(true);
    await stopped;

    // Charged once, for the slow call alone; nothing pending; no database failure reported.
    const cost = result.extensions.credits.charges[0].cost as number;
    expect(cost).toBeGreaterThan(0);
    expect((await ledgerState(database, subscriptionId)).balances.leads).toBe(100 - cost);
    const pending = await queryRows<{ n: number }>(database.db, sql`select count(*)::int as n from pending_charges where subscription_id = ${subscriptionId}::uuid`);
    expect(Number(pending[0].n)).toBe(0);
    expect(await auditLedger(database.db)).toMatchObject({ ok: true, mismatches: [] });
    expect(await failedTransactionAlerts()).toBe(0);
    expect(captured.lines.filter((l) => l.event === "credits.transaction_failed")).toEqual([]);
    expect(captured.lines.filter((l) => l.level >= 50).map((l) => l.msg)).toEqual([]);
  }, 30_000);
});
