/**
 * Pay only for delivered results (DESIGN.md, "The charge path", step 8): a field whose result does
 * not reach the client is refunded whole: nulled through a non-null parent by a sibling's system
 * error, or the client went away before the response. On PGlite and PostgreSQL, over HTTP.
 */
import { request } from "node:http";
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp, type App } from "../../src/app/create-app.js";
import { loadConfig } from "../../src/config/config.js";
import { auditLedger } from "../../src/ledger/audit.js";
import { createLogger } from "../../src/observability/logger.js";
import pg from "pg";
import type { LeadSearchRequest, PhoneLookupRequest, ProviderCallOptions } from "../../src/providers/providers.js";
import { SimulatedProviders } from "../../src/providers/simulated/simulated-providers.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { ledgerEntries, ledgerState } from "../helpers/ledger-state.js";
import { fundedSubscription, postGraphQL, userToken } from "../helpers/test-app.js";

/** A promise and the function that resolves it. */
function signal(): { promise: Promise<void>; fire: () => void } {
  let fire!: () => void;
  const promise = new Promise<void>((resolve) => (fire = resolve));
  return { promise, fire };
}

/**
 * The simulators, except that looking up the phone "+15555550999" fails on the provider's side, and
 * a lead search for "gated" says it started and waits to be let go.
 */
class OneFailingPhone extends SimulatedProviders {
  gate = { started: signal(), release: signal() };

  override async lookupPhones(req: PhoneLookupRequest, options: ProviderCallOptions) {
    if (req.phones.includes("+15555550999")) throw new Error("carrier API down");
    return super.lookupPhones(req, options);
  }

  override async searchLeads(req: LeadSearchRequest, options: ProviderCallOptions) {
    if (req.query === "gated") {
      this.gate.started.fire();
      await this.gate.release.promise;
    }
    return super.searchLeads(req, options);
  }
}

/** Sends a request on its own connection; `hangUp` closes it without reading an answer. */
function rawRequest(url: string, token: string, body: string, headers: Record<string, string> = {}): { hangUp: () => void; answered: Promise<boolean> } {
  const target = new URL(url);
  let req: ReturnType<typeof request>;
  const answered = new Promise<boolean>((resolve) => {
    req = request(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method: "POST",
        agent: false,
        headers: { "content-type": "application/json", authorization: `Bearer ${token}`, ...headers },
      },
      () => resolve(true),
    );
    req.on("error", () => resolve(false));
    req.end(body);
  });
  return { hangUp: () => req.destroy(), answered };
}

/** The subscription's ledger once it holds `refunds` REFUND entries (or as it stands after 6 s). */
async function entriesOnceRefunded(database: TestDatabase, subscriptionId: string, refunds: number) {
  let entries = await ledgerEntries(database, subscriptionId);
  for (let i = 0; i < 60 && entries.filter((e) => e.kind === "REFUND").length < refunds; i++) {
    await new Promise((r) => setTimeout(r, 100));
    entries = await ledgerEntries(database, subscriptionId);
  }
  return entries;
}

const THREE = `mutation($s: ID!, $third: String!) {
  a: lookupPhones(subscriptionId: $s, input: { phones: ["+15555550100"] }) { results { valid } }
  b: skipTrace(subscriptionId: $s, input: { records: [{ firstName: "Ada", lastName: "Lovelace", address: "1 Main St" }] }) { matches { recordIndex } }
  c: lookupPhones(subscriptionId: $s, input: { phones: [$third] }) { results { valid } }
}`;

describe.each(BACKENDS)("pay only for delivered results on %s", (backend) => {
  let database: TestDatabase;
  let app: App;
  let url: string;
  let token: string;
  let providers: OneFailingPhone;

  beforeAll(async () => {
    database = await createTestDatabase(backend);
    const config = loadConfig({
      PGLITE_DIR: "memory://",
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "silent",
      NODE_ENV: "test",
      SIMULATE_FAILURES: "1",
      SIMULATE_SLOW_MS: "1500",
    });
    providers = new OneFailingPhone();
    app = await createApp(config, { database, logger: createLogger(config.LOG_LEVEL), providers });
    url = await app.listen(0, "127.0.0.1");
    token = await userToken("deliver-owner");
  });
  afterAll(async () => {
    await app?.close();
    await database?.dispose();
  });

  it("an affordable three-field operation: all three charged when every result arrives", async () => {
    const sub = await fundedSubscription(database, "deliver-owner", { skiptrace: 10 });
    const res = await postGraphQL(`${url}/graphql`, THREE, { s: sub, third: "+15555550101" }, { token });
    expect(res.status).toBe(200);
    const costs = res.body.extensions!.credits.charges.map((c: { cost: number }) => c.cost);
    expect(costs).toHaveLength(3);
    expect((await ledgerState(database, sub)).balances.skiptrace).toBe(10 - costs.reduce((a: number, b: number) => a + b, 0));
  });

  it("its third field failing with a system error nulls the two others' results through the non-null root: none is charged", async () => {
    const sub = await fundedSubscription(database, "deliver-owner", { skiptrace: 10 });
    const res = await postGraphQL(`${url}/graphql`, THREE, { s: sub, third: "+15555550999" }, { token });
    expect(res.body.data).toBeNull();
    expect(res.body.errors!.map((e) => [e.path, e.extensions.code])).toEqual([[["c"], "INTERNAL_SERVER_ERROR"]]);
    const charges = res.body.extensions!.credits.charges;
    // a and b ran and succeeded, but their results never reached the client.
    expect(charges.map((c: { path: string[]; charged: number; refunded: number; cost: number }) => [c.path[0], c.charged, c.refunded, c.cost])).toEqual([
      ["a", 1, 1, 0],
      ["b", 1, 1, 0],
      ["c", 1, 1, 0],
    ]);
    expect((await ledgerState(database, sub)).balances.skiptrace).toBe(10);
    const refunds = (await ledgerEntries(database, sub)).filter((e) => e.kind === "REFUND");
    expect(refunds).toHaveLength(3);
    expect(await auditLedger(database.db)).toMatchObject({ ok: true });
  });

  it("a client that goes away before the response is refunded whole", async () => {
    const sub = await fundedSubscription(database, "deliver-owner", { leads: 10 });
    const body = JSON.stringify({
      query: `mutation($s: ID!) { searchLeads(subscriptionId: $s, input: { query: "x", limit: 5 }) { total } }`,
      variables: { s: sub },
    });
    const target = new URL(`${url}/graphql`);
    await new Promise<void>((resolve) => {
      const req = request(
        { host: target.hostname, port: target.port, path: target.pathname, method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${token}`, "x-simulate-failure": "slow" } },
        () => resolve(),
      );
      req.on("error", () => resolve());
      req.end(body);
      // The hold is made and the slow provider is running: hang up.
      setTimeout(() => {
        req.destroy();
        resolve();
      }, 500);
    });
    // The server finishes the call, finds its client gone and refunds the hold.
    const entries = await entriesOnceRefunded(database, sub, 1);
    expect(entries.map((e) => [e.kind, e.amount])).toEqual([
      ["GRANT", 10],
      ["DEBIT", -5],
      ["REFUND", 5],
    ]);
    expect((await ledgerState(database, sub)).balances.leads).toBe(10);
  });

  // The window between the settlement's verdict (client still there) and the response's write: here
  // the settlement statement waits on a row lock taken by the test while the client hangs up. Found by
  // an outside audit: a client closing in those milliseconds paid for a result it never received.
  // A second connection takes the lock: PostgreSQL only (PGlite has one).
  if (backend === "postgres") it("a client that goes away while its call settles is refunded after the settlement", async () => {
    const sub = await fundedSubscription(database, "deliver-owner", { leads: 10 });
    const call = rawRequest(
      `${url}/graphql`,
      token,
      JSON.stringify({ query: `mutation($s: ID!) { searchLeads(subscriptionId: $s, input: { query: "gated", limit: 5 }) { total } }`, variables: { s: sub } }),
    );
    await providers.gate.started.promise;
    const blocker = new pg.Client({ connectionString: database.url });
    await blocker.connect();
    try {
      await blocker.query("begin");
      // The call's pending mark: the settlement must delete it, so it waits for this transaction.
      const locked = await blocker.query("select 1 from pending_charges where subscription_id = $1 for update", [sub]);
      expect(locked.rowCount).toBe(1);
      providers.gate.release.fire();
      await new Promise((r) => setTimeout(r, 300)); // the resolver returns; the settlement waits on the lock
      call.hangUp();
      await new Promise((r) => setTimeout(r, 300)); // the server sees the connection close
      await blocker.query("commit");
    } finally {
      await blocker.end();
    }
    expect(await call.answered).toBe(false);
    const entries = await entriesOnceRefunded(database, sub, 1);
    const debit = entries.find((e) => e.kind === "DEBIT")!;
    const released = entries.filter((e) => e.kind === "RELEASE").reduce((sum, e) => sum + e.amount, 0);
    const refund = entries.find((e) => e.kind === "REFUND");
    expect(debit.amount).toBe(-5);
    expect(refund?.amount).toBe(5 - released);
    const reader = new pg.Client({ connectionString: database.url });
    await reader.connect();
    const reason = await reader.query("select reason from credit_ledger where id = $1", [refund!.id]).finally(() => reader.end());
    expect(reason.rows[0].reason).toBe("result not delivered");
    expect((await ledgerState(database, sub)).balances.leads).toBe(10);
    expect(await auditLedger(database.db)).toMatchObject({ ok: true });
  });

  // docs/reliability.md: a call sent with an Idempotency-Key whose response is lost keeps its charge,
  // because its result is stored and a retry with the key replays it; refunding it as undelivered
  // would hand the retry a result for free. The same window as above, the call sent with a key.
  if (backend === "postgres") it("a client with an Idempotency-Key that goes away while its call settles keeps its charge, and its retry replays it", async () => {
    const sub = await fundedSubscription(database, "deliver-owner", { leads: 10 });
    providers.gate = { started: signal(), release: signal() };
    const key = `lost-response-${sub}`;
    const query = `mutation($s: ID!) { searchLeads(subscriptionId: $s, input: { query: "gated", limit: 5 }) { total } }`;
    const call = rawRequest(`${url}/graphql`, token, JSON.stringify({ query, variables: { s: sub } }), { "idempotency-key": key });
    await providers.gate.started.promise;
    const blocker = new pg.Client({ connectionString: database.url });
    await blocker.connect();
    try {
      await blocker.query("begin");
      const locked = await blocker.query("select 1 from pending_charges where subscription_id = $1 for update", [sub]);
      expect(locked.rowCount).toBe(1);
      providers.gate.release.fire();
      await new Promise((r) => setTimeout(r, 300)); // the resolver returns; the settlement waits on the lock
      call.hangUp();
      await new Promise((r) => setTimeout(r, 300)); // the server sees the connection close
      await blocker.query("commit");
    } finally {
      await blocker.end();
    }
    expect(await call.answered).toBe(false);
    // The settlement is written (no pending mark left), and then some time for a refund that must not come.
    const reader = new pg.Client({ connectionString: database.url });
    await reader.connect();
    try {
      for (let i = 0; i < 40 && (await reader.query("select 1 from pending_charges where subscription_id = $1", [sub])).rowCount! > 0; i++) {
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await reader.end();
    }
    await new Promise((r) => setTimeout(r, 1_000));
    const entries = await ledgerEntries(database, sub);
    const debit = entries.find((e) => e.kind === "DEBIT")!;
    const released = entries.filter((e) => e.kind === "RELEASE").reduce((sum, e) => sum + e.amount, 0);
    expect(debit.amount).toBe(-5);
    expect(entries.filter((e) => e.kind === "REFUND")).toEqual([]);
    const cost = 5 - released;
    expect(cost).toBeGreaterThan(0);
    expect((await ledgerState(database, sub)).balances.leads).toBe(10 - cost);

    const retry = await postGraphQL(`${url}/graphql`, query, { s: sub }, { token, headers: { "idempotency-key": key } });
    expect(retry.status).toBe(200);
    expect(retry.body.extensions!.credits.charges).toHaveLength(1);
    expect(retry.body.extensions!.credits.charges[0]).toMatchObject({ replayed: true, entryId: debit.id, cost, refunded: 0 });
    const after = await ledgerEntries(database, sub);
    expect(after.filter((e) => e.kind === "DEBIT")).toHaveLength(1);
    expect(after).toEqual(entries);
    expect((await ledgerState(database, sub)).balances.leads).toBe(10 - cost);
    expect(await auditLedger(database.db)).toMatchObject({ ok: true });
  });

  // The client's close and the settlement's answer read in one poll of the event loop, the answer
  // first: its callbacks ran on to write the response before the close was read, and a write on a
  // connection its client has closed succeeds as far as the server can tell. Under load one poll
  // holds many events: an outside audit found 14 of 40 clients that hung up after their holds
  // charged in full. Here the settlement waits on a row lock; the test lets it go and holds the loop
  // busy until its answer is in, then hangs up, so both are waiting, the answer first, when the loop
  // next polls. A second connection takes the lock: PostgreSQL only.
  if (backend === "postgres") it("a client whose close is read with the settlement's answer is refunded", async () => {
    const sub = await fundedSubscription(database, "deliver-owner", { leads: 10 });
    providers.gate = { started: signal(), release: signal() };
    const call = rawRequest(
      `${url}/graphql`,
      token,
      JSON.stringify({ query: `mutation($s: ID!) { searchLeads(subscriptionId: $s, input: { query: "gated", limit: 5 }) { total } }`, variables: { s: sub } }),
    );
    await providers.gate.started.promise;
    const blocker = new pg.Client({ connectionString: database.url });
    await blocker.connect();
    try {
      await blocker.query("begin");
      const locked = await blocker.query("select 1 from pending_charges where subscription_id = $1 for update", [sub]);
      expect(locked.rowCount).toBe(1);
      providers.gate.release.fire();
      await new Promise((r) => setTimeout(r, 300)); // the resolver returns; the settlement waits on the lock
      const committed = blocker.query("commit"); // sent at once: the settlement goes on in the database
      const until = Date.now() + 100;
      while (Date.now() < until); // the settlement's answer arrives meanwhile, unread
      call.hangUp();
      await committed;
    } finally {
      await blocker.end();
    }
    expect(await call.answered).toBe(false);
    const entries = await entriesOnceRefunded(database, sub, 1);
    expect(entries.filter((e) => e.kind === "REFUND")).toHaveLength(1);
    expect((await ledgerState(database, sub)).balances.leads).toBe(10);
    expect(await auditLedger(database.db)).toMatchObject({ ok: true });
  });
  // HTTP/1.1 pipelining (an outside overload audit): a fast call sent behind a slow one on the same
  // connection finishes first, and node:http keeps its response queued until the slow one is written.
  // The client hung up before either: the queued response was never written, yet its call stayed
  // charged (it heard neither 'finish' nor 'close'; only the connection closed), and the request
  // counted as in flight, so a graceful stop waited its whole grace.
  it("a pipelined call whose queued response never leaves because the client went away is refunded whole", async () => {
    const sub = await fundedSubscription(database, "deliver-owner", { leads: 20 });
    const target = new URL(`${url}/graphql`);
    const call = (query: string, slow: boolean) => {
      const body = JSON.stringify({ query: `mutation($s: ID!) { searchLeads(subscriptionId: $s, input: { query: "${query}", limit: 5 }) { total } }`, variables: { s: sub } });
      return (
        `POST ${target.pathname} HTTP/1.1\r\nHost: ${target.host}\r\nContent-Type: application/json\r\nAuthorization: Bearer ${token}\r\n` +
        `${slow ? "x-simulate-failure: slow\r\n" : ""}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
      );
    };
    const socket = connect(Number(target.port), target.hostname);
    let received = "";
    socket.on("data", (chunk) => (received += String(chunk)));
    socket.on("error", () => undefined);
    await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
    socket.write(call("slow one", true) + call("fast one", false));
    // Both holds made, the fast call settled (its response queued behind the slow one): hang up.
    await new Promise((r) => setTimeout(r, 700));
    socket.destroy();
    const entries = await entriesOnceRefunded(database, sub, 2);
    expect(received).toBe("");
    expect(entries.filter((e) => e.kind === "DEBIT")).toHaveLength(2);
    expect(entries.filter((e) => e.kind === "REFUND")).toHaveLength(2);
    expect((await ledgerState(database, sub)).balances.leads).toBe(20);
    expect(await auditLedger(database.db)).toMatchObject({ ok: true });
  });
});
