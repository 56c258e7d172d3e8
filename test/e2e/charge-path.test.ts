/**
 * The charge path over HTTP, on PGlite and PostgreSQL: every refusal (401, 400, 403, 404, 402)
 * leaves the balance and the ledger untouched; a system error refunds, a user-input error keeps the
 * charge; extensions.credits always matches the ledger.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { setSubscriptionStatus } from "../../src/subscriptions/subscription-store.js";
import { auditLedger } from "../../src/ledger/audit.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { adminToken, fundedSubscription, startTestServer, userToken, type TestServer } from "../helpers/test-app.js";
import { ledgerEntries, ledgerState } from "../helpers/ledger-state.js";

const RUN_AI = `mutation Run($s: ID!, $input: AiTaskInput!, $amount: Int) {
  runAiTask(subscriptionId: $s, input: $input, creditAmount: $amount) { output model tokensUsed }
}`;

/** A lead query that finds exactly `found` of 50 (the simulator is deterministic: search until one does). */
async function queryFinding(server: TestServer, token: string, sub: string, found: number): Promise<string> {
  const { SimulatedProviders } = await import("../../src/providers/simulated/simulated-providers.js");
  const providers = new SimulatedProviders();
  for (let i = 0; i < 5000; i++) {
    const query = `roofers ${i}`;
    if ((await providers.searchLeads({ query, location: null, limit: 50 }, {})).leads.length === found) return query;
  }
  throw new Error(`no query finds ${found} leads`);
}

/** `count` skip-trace records of which exactly `matching` match. */
async function recordsMatching(_server: TestServer, _token: string, _sub: string, count: number, matching: number) {
  const { SimulatedProviders } = await import("../../src/providers/simulated/simulated-providers.js");
  const providers = new SimulatedProviders();
  const hits: object[] = [];
  const misses: object[] = [];
  for (let i = 0; hits.length < matching || misses.length < count - matching; i++) {
    const record = { firstName: "Ada", lastName: `Person${i}`, address: "1 Main St" };
    const matched = (await providers.skipTrace({ records: [record] }, {})).matches.length === 1;
    (matched ? hits : misses).push(record);
  }
  return [...hits.slice(0, matching), ...misses.slice(0, count - matching)];
}

describe.each(BACKENDS)("charge path over HTTP on %s", (backend) => {
  let database: TestDatabase;
  let server: TestServer;
  let owner: string;
  let stranger: string;
  let admin: string;
  let sub: string;

  beforeAll(async () => {
    database = await createTestDatabase(backend);
    server = await startTestServer({ database, env: { SIMULATE_FAILURES: "1", SIMULATE_SLOW_MS: "3000", RATE_LIMIT_DEFAULT: "100000/1m" } });
    owner = await userToken("owner");
    stranger = await userToken("stranger");
    admin = await adminToken();
    sub = await fundedSubscription(database, "owner", { ai: 10, leads: 600, skiptrace: 100 });
  });
  afterAll(async () => {
    await server?.close();
    await database?.dispose();
  });

  it("serves /health and echoes request ids", async () => {
    const health = await fetch(`${server.url}/health`, { headers: { "x-request-id": "trace-123" } });
    expect(health.status).toBe(200);
    expect(health.headers.get("x-request-id")).toBe("trace-123");
    expect(await health.json()).toMatchObject({ status: "ok", database: "up", backend });
    const generated = await server.gql("{ creditTypes { name } }");
    expect(generated.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("answers viewer and subscription with balances", async () => {
    const res = await server.gql(`{ viewer { id isAdmin subscriptions { id ownerId status balances { type balance } } } }`, {}, { token: owner });
    expect(res.status).toBe(200);
    expect(res.body.data.viewer).toMatchObject({ id: "owner", isAdmin: false });
    expect(res.body.data.viewer.subscriptions).toEqual([
      expect.objectContaining({
        id: sub,
        status: "ACTIVE",
        balances: [
          { type: "ai", balance: 10 },
          { type: "leads", balance: 600 },
          { type: "skiptrace", balance: 100 },
        ],
      }),
    ]);
    const q = `query($id: ID!) { subscription(id: $id) { id balances { type balance } } }`;
    expect((await server.gql(q, { id: sub }, { token: admin })).body.data.subscription.id).toBe(sub);
    const forbidden = await server.gql(q, { id: sub }, { token: stranger });
    expect([forbidden.status, forbidden.body.errors?.[0].extensions.code]).toEqual([403, "FORBIDDEN"]);
    const missing = await server.gql(q, { id: "00000000-0000-4000-8000-000000000000" }, { token: owner });
    expect([missing.status, missing.body.errors?.[0].extensions.code]).toEqual([404, "NOT_FOUND"]);
    const malformed = await server.gql(q, { id: "not-a-uuid" }, { token: owner });
    expect([malformed.status, malformed.body.errors?.[0].extensions.code]).toEqual([404, "NOT_FOUND"]);
    const huge = await server.gql(q, { id: "x".repeat(100_000) }, { token: owner });
    expect([huge.status, huge.body.errors?.[0].extensions.code]).toEqual([404, "NOT_FOUND"]);
    expect(huge.body.errors![0].message.length).toBeLessThan(200);
    const anonymous = await server.gql(`{ viewer { id } }`);
    expect([anonymous.status, anonymous.body.errors?.[0].extensions.code]).toEqual([401, "UNAUTHENTICATED"]);
  });

  it("holds the price, settles at the metered actual cost and releases the rest; extensions, balance and ledger agree", async () => {
    const before = await ledgerState(database, sub);
    const res = await server.gql(RUN_AI, { s: sub, input: { prompt: "x".repeat(400), maxTokens: 2000 } }, { token: owner });
    expect(res.status).toBe(200);
    const { tokensUsed } = res.body.data.runAiTask;
    expect(tokensUsed).toBeLessThan(2000);
    const credits = res.body.extensions!.credits;
    // Hold: ceil((ceil(400/4) + 2000) / 1000) = 3; actual: the same formula with tokensUsed.
    const actual = Math.ceil((100 + tokensUsed) / 1000);
    const cost = Math.max(1, Math.min(actual, 3));
    expect(credits.charges).toEqual([
      {
        path: ["runAiTask"],
        operation: "Mutation.runAiTask",
        subscriptionId: sub,
        type: "ai",
        estimated: 3,
        charged: 3,
        actual,
        released: 3 - cost,
        refunded: 0,
        cost,
        remaining: before.balances.ai - cost,
        entryId: expect.any(String),
        adminOverride: false,
        fallback: false,
      },
    ]);
    expect(Object.keys(credits.charges[0])).toEqual([
      "path", "operation", "subscriptionId", "type", "estimated", "charged", "actual", "released", "refunded", "cost", "remaining", "entryId", "adminOverride", "fallback",
    ]);
    expect(credits.remaining).toEqual({ [sub]: { ai: before.balances.ai - cost } });
    expect((await ledgerState(database, sub)).balances.ai).toBe(before.balances.ai - cost);
    const entries = await ledgerEntries(database, sub);
    const debit = entries.find((e) => e.id === credits.charges[0].entryId)!;
    expect(debit).toMatchObject({ kind: "DEBIT", amount: -3, balance_after: before.balances.ai - 3, operation: "Mutation.runAiTask", estimated: 3, actor_id: "owner" });
    expect(debit.request_id).toBe(res.headers.get("x-request-id"));
    const release = entries.find((e) => e.refund_of === debit.id)!;
    expect(release).toMatchObject({ kind: "RELEASE", amount: 3 - cost, balance_after: before.balances.ai - cost, operation: "Mutation.runAiTask" });
    expect(await auditLedger(database.db)).toMatchObject({ ok: true });
  });

  it("a lead search pays for the leads it found, a skip trace for the records that matched", async () => {
    const leads = await server.gql(
      `mutation($s: ID!, $q: String!) { searchLeads(subscriptionId: $s, input: { query: $q, limit: 50 }) { leads { name } } }`,
      { s: sub, q: await queryFinding(server, owner, sub, 12) },
      { token: owner },
    );
    expect(leads.body.data.searchLeads.leads).toHaveLength(12);
    expect(leads.body.extensions!.credits.charges[0]).toMatchObject({ charged: 50, actual: 12, released: 38, cost: 12 });

    const records = await recordsMatching(server, owner, sub, 5, 2);
    const trace = await server.gql(
      `mutation($s: ID!, $r: [SkipTraceRecord!]!) { skipTrace(subscriptionId: $s, input: { records: $r }) { matches { recordIndex } } }`,
      { s: sub, r: records },
      { token: owner },
    );
    expect(trace.body.data.skipTrace.matches).toHaveLength(2);
    expect(trace.body.extensions!.credits.charges[0]).toMatchObject({ charged: 5, actual: 2, released: 3, cost: 2 });
    expect(await auditLedger(database.db)).toMatchObject({ ok: true });
  });

  it("charges several metered fields of one operation, by alias, each settled at its own cost", async () => {
    const before = await ledgerState(database, sub);
    const res = await server.gql(
      `mutation($s: ID!) {
        a: searchLeads(subscriptionId: $s, input: { query: "plumbers", limit: 3 }) { leads { name } }
        b: searchMls(subscriptionId: $s, input: { area: "Austin", limit: 26, includeHistory: true }) { listings { mlsId } }
        c: lookupPhones(subscriptionId: $s, input: { phones: ["+15555550100", "+15555550101"], carrierLookup: true }) { results { valid } }
      }`,
      { s: sub },
      { token: owner },
    );
    expect(res.status).toBe(200);
    const charges = res.body.extensions!.credits.charges;
    const found = res.body.data.a.leads.length;
    const listings = res.body.data.b.listings.length;
    const mlsCost = Math.max(1, Math.ceil(listings / 25) * 2);
    expect(charges.map((c: { path: string[]; charged: number; type: string; cost: number }) => [c.path[0], c.type, c.charged, c.cost])).toEqual([
      ["a", "leads", 3, Math.max(1, found)],
      ["b", "leads", 4, mlsCost],
      ["c", "skiptrace", 4, 4],
    ]);
    expect(res.body.extensions!.credits.remaining).toEqual({
      [sub]: { leads: before.balances.leads - Math.max(1, found) - mlsCost, skiptrace: before.balances.skiptrace - 4 },
    });
    // Each charge's remaining is the balance after the LAST change the request made to it: `a`'s is
    // the leads balance after `b` settled too (it used to be the balance after `a`'s own settlement).
    const after = await ledgerState(database, sub);
    expect(charges.map((c: { path: string[]; remaining: number }) => [c.path[0], c.remaining])).toEqual([
      ["a", after.balances.leads],
      ["b", after.balances.leads],
      ["c", after.balances.skiptrace],
    ]);
  });

  it("reports the balance after a first field's release when a later field on the same balance releases nothing", async () => {
    // Found by an outside audit: `b` settles without an entry, and its settlement noted the balance
    // of its own hold (before `a`'s release) as the request's last.
    const query = await queryFinding(server, owner, sub, 12);
    const res = await server.gql(
      `mutation($s: ID!, $q: String!) {
        a: searchLeads(subscriptionId: $s, input: { query: $q, limit: 50 }) { leads { name } }
        b: harvestDomain(subscriptionId: $s, input: { domain: "example.com", sources: ["bing"], limit: 10 }) { hosts }
      }`,
      { s: sub, q: query },
      { token: owner },
    );
    expect(res.status).toBe(200);
    const { charges, remaining } = res.body.extensions!.credits;
    expect(charges.map((c: { path: string[]; released: number; cost: number }) => [c.path[0], c.released, c.cost])).toEqual([
      ["a", 38, 12],
      ["b", 0, 1],
    ]);
    const after = await ledgerState(database, sub);
    expect(remaining[sub].leads).toBe(after.balances.leads);
    expect(charges.map((c: { remaining: number }) => c.remaining)).toEqual([after.balances.leads, after.balances.leads]);
  });

  describe("refusals move nothing", () => {
    const cases: [string, () => Promise<{ token?: string; vars: Record<string, unknown>; headers?: Record<string, string> }>, number, string][] = [
      ["no token", async () => ({ vars: { s: sub, input: { prompt: "hi" } } }), 401, "UNAUTHENTICATED"],
      ["a forged token", async () => ({ token: `${await userToken("owner")}x`, vars: { s: sub, input: { prompt: "hi" } } }), 401, "UNAUTHENTICATED"],
      ["an empty subscriptionId", async () => ({ token: owner, vars: { s: "", input: { prompt: "hi" } } }), 400, "BAD_USER_INPUT"],
      ["maxTokens out of range", async () => ({ token: owner, vars: { s: sub, input: { prompt: "hi", maxTokens: 8193 } } }), 400, "BAD_USER_INPUT"],
      ["an empty prompt", async () => ({ token: owner, vars: { s: sub, input: { prompt: "" } } }), 400, "BAD_USER_INPUT"],
      ["an unknown enum value", async () => ({ token: owner, vars: { s: sub, input: { prompt: "hi", model: "HUGE" } } }), 400, "BAD_USER_INPUT"],
      ["a negative creditAmount", async () => ({ token: admin, vars: { s: sub, input: { prompt: "hi" }, amount: -1 } }), 400, "BAD_USER_INPUT"],
      ["an unknown subscription", async () => ({ token: owner, vars: { s: "00000000-0000-4000-8000-000000000000", input: { prompt: "hi" } } }), 404, "NOT_FOUND"],
      ["a malformed subscription id", async () => ({ token: owner, vars: { s: "1; drop table credit_ledger", input: { prompt: "hi" } } }), 404, "NOT_FOUND"],
      ["someone else's subscription", async () => ({ token: stranger, vars: { s: sub, input: { prompt: "hi" } } }), 403, "FORBIDDEN"],
      ["creditAmount from a non-admin", async () => ({ token: owner, vars: { s: sub, input: { prompt: "hi" }, amount: 0 } }), 403, "FORBIDDEN"],
      ["more than the balance", async () => ({ token: owner, vars: { s: sub, input: { prompt: "hi", model: "LARGE", maxTokens: 8192 } } }), 402, "INSUFFICIENT_CREDITS"],
    ];

    it.each(cases)("%s", async (_name, make, status, code) => {
      const before = await ledgerState(database, sub);
      const { token, vars } = await make();
      const res = await server.gql(RUN_AI, vars, { token });
      expect(res.status).toBe(status);
      expect(res.body.errors).toHaveLength(1);
      expect(res.body.errors![0].extensions.code).toBe(code);
      expect(res.body.errors![0].extensions.requestId).toBe(res.headers.get("x-request-id"));
      expect(await ledgerState(database, sub)).toEqual(before);
      if (res.body.extensions?.credits) expect(res.body.extensions.credits.charges).toEqual([]);
    });

    it("INSUFFICIENT_CREDITS says what is needed and what is there", async () => {
      const res = await server.gql(RUN_AI, { s: sub, input: { prompt: "hi", model: "LARGE", maxTokens: 8192 } }, { token: owner });
      const { balances } = await ledgerState(database, sub);
      expect(res.body.errors![0]).toMatchObject({
        message: `Insufficient credits: ai needs 45, ${balances.ai} available`,
        extensions: { code: "INSUFFICIENT_CREDITS", creditType: "ai", required: 45, available: balances.ai, subscriptionId: sub },
      });
      expect(res.body.extensions!.credits).toEqual({ charges: [], remaining: { [sub]: { ai: balances.ai } } });
    });

    it("an operation whose total of one type passes the largest balance is refused 402 with that total, nothing held", async () => {
      // Found by an outside audit: two admin prices of 2,000,000,000 (each a valid Int) summed past
      // PostgreSQL's integer in the hold statement: 500.
      const before = await ledgerState(database, sub);
      const res = await server.gql(
        `mutation($s: ID!) {
          a: runAiTask(subscriptionId: $s, input: { prompt: "hi" }, creditAmount: 2000000000) { tokensUsed }
          b: runAiTask(subscriptionId: $s, input: { prompt: "hi" }, creditAmount: 2000000000) { tokensUsed }
        }`,
        { s: sub },
        { token: admin },
      );
      expect(res.status).toBe(402);
      expect(res.body.errors).toHaveLength(1);
      expect(res.body.errors![0]).toMatchObject({
        extensions: { code: "INSUFFICIENT_CREDITS", creditType: "ai", required: 4000000000, available: before.balances.ai, subscriptionId: sub },
      });
      expect(await ledgerState(database, sub)).toEqual(before);
    });

    it("an inactive subscription cannot spend", async () => {
      const suspended = await fundedSubscription(database, "owner", { ai: 5 });
      await setSubscriptionStatus(database.db, suspended, "SUSPENDED", "test");
      const before = await ledgerState(database, suspended);
      const res = await server.gql(RUN_AI, { s: suspended, input: { prompt: "hi" } }, { token: owner });
      expect([res.status, res.body.errors![0].extensions.code]).toEqual([403, "FORBIDDEN"]);
      expect(res.body.errors![0].message).toMatch(/SUSPENDED/);
      expect(await ledgerState(database, suspended)).toEqual(before);
      // Refused before the hold, it still shows the owner the balance it would have spent from.
      expect(res.body.extensions!.credits).toEqual({ charges: [], remaining: { [suspended]: { ai: 5 } } });
    });

    it("a refusal before the hold shows the caller's balance (403 for a creditAmount), never a stranger's", async () => {
      const { balances } = await ledgerState(database, sub);
      const overridden = await server.gql(RUN_AI, { s: sub, input: { prompt: "hi" }, amount: 0 }, { token: owner });
      expect([overridden.status, overridden.body.errors![0].extensions.code]).toEqual([403, "FORBIDDEN"]);
      expect(overridden.body.extensions!.credits).toEqual({ charges: [], remaining: { [sub]: { ai: balances.ai } } });
      const strangers = await server.gql(RUN_AI, { s: sub, input: { prompt: "hi" } }, { token: stranger });
      expect([strangers.status, strangers.body.errors![0].extensions.code]).toEqual([403, "FORBIDDEN"]);
      expect(strangers.body.extensions!.credits).toEqual({ charges: [], remaining: {} });
    });
  });

  it("a system error refunds the whole charge and is masked", async () => {
    const before = await ledgerState(database, sub);
    const res = await server.gql(RUN_AI, { s: sub, input: { prompt: "hi" } }, { token: owner, headers: { "x-simulate-failure": "system" } });
    expect(res.status).toBe(500);
    expect(res.body.errors![0].extensions.code).toBe("INTERNAL_SERVER_ERROR");
    expect(res.body.errors![0].message).not.toMatch(/simulated|outage/);
    expect(res.body.errors![0].extensions.requestId).toBeTruthy();
    const [charge] = res.body.extensions!.credits.charges;
    expect(charge).toMatchObject({ charged: 1, actual: null, released: 0, refunded: 1, cost: 0, remaining: before.balances.ai });
    expect(res.body.extensions!.credits.remaining).toEqual({ [sub]: { ai: before.balances.ai } });
    const after = await ledgerState(database, sub);
    expect(after.balances).toEqual(before.balances);
    expect(after.entries).toBe(before.entries + 2);
    const entries = await ledgerEntries(database, sub);
    const refund = entries.at(-1)!;
    expect(refund).toMatchObject({ kind: "REFUND", amount: 1, refund_of: charge.entryId, balance_after: before.balances.ai });
    // The ledger a client reads says why in plain words: no error class or message (those are in the log).
    const ledger = await server.gql(
      `query ($s: ID!) { creditLedger(subscriptionId: $s, filter: { kinds: [REFUND] }, first: 1) { edges { node { refundOf reason } } } }`,
      { s: sub },
      { token: owner },
    );
    expect(ledger.body.data.creditLedger.edges).toEqual([{ node: { refundOf: charge.entryId, reason: "system error" } }]);
  });

  it("a user-input error from the resolver keeps the charge", async () => {
    const before = await ledgerState(database, sub);
    const res = await server.gql(RUN_AI, { s: sub, input: { prompt: "hi" } }, { token: owner, headers: { "x-simulate-failure": "input" } });
    expect([res.status, res.body.errors![0].extensions.code]).toEqual([400, "BAD_USER_INPUT"]);
    expect(res.body.extensions!.credits.charges[0]).toMatchObject({ charged: 1, refunded: 0, released: 0, cost: 1, remaining: before.balances.ai - 1 });
    expect((await ledgerState(database, sub)).balances.ai).toBe(before.balances.ai - 1);
  });

  it("admins may set the price, 0 included, and it is recorded as an override", async () => {
    const res = await server.gql(RUN_AI, { s: sub, input: { prompt: "hi", maxTokens: 1500 }, amount: 0 }, { token: admin });
    expect(res.status).toBe(200);
    const [charge] = res.body.extensions!.credits.charges;
    // Exactly the admin's amount: no meter, nothing released.
    expect(charge).toMatchObject({ estimated: 2, charged: 0, actual: null, released: 0, refunded: 0, cost: 0, adminOverride: true });
    const entries = await ledgerEntries(database, sub);
    expect(entries.find((e) => e.id === charge.entryId)).toMatchObject({ kind: "DEBIT", amount: 0, admin_override: true, estimated: 2, actor_id: "test-admin" });
  });

  it("usage reports what was held, released and refunded; a balance shows what open holds hold", async () => {
    const fresh = await fundedSubscription(database, "owner", { ai: 10, leads: 10, skiptrace: 10 });
    const ran = await server.gql(RUN_AI, { s: fresh, input: { prompt: "x".repeat(400), maxTokens: 2000 } }, { token: owner });
    const { cost } = ran.body.extensions!.credits.charges[0];
    await server.gql(RUN_AI, { s: fresh, input: { prompt: "hi" } }, { token: owner, headers: { "x-simulate-failure": "system" } });
    const usage = await server.gql(
      `query($s: ID!) { creditUsage(subscriptionId: $s, groupBy: OPERATION) { key calls estimated credits released refunded } }`,
      { s: fresh },
      { token: owner },
    );
    expect(usage.body.data.creditUsage).toEqual([
      { key: "Mutation.runAiTask", calls: 2, estimated: 4, credits: cost, released: 3 - cost, refunded: 1 },
    ]);

    // While a slow call runs, its hold shows as held; once it settles, nothing is.
    const HELD = `query { viewer { subscriptions { id balances { type balance held } } } }`;
    const heldOf = async () => {
      const res = await server.gql(HELD, {}, { token: owner });
      const found = res.body.data.viewer.subscriptions.find((x: { id: string }) => x.id === fresh);
      return found.balances.find((b: { type: string }) => b.type === "leads") as { balance: number; held: number };
    };
    const slow = server.gql(
      `mutation($s: ID!) { searchLeads(subscriptionId: $s, input: { query: "x", limit: 4 }) { total } }`,
      { s: fresh },
      { token: owner, headers: { "x-simulate-failure": "slow" } },
    );
    // The hold commits before the provider starts; wait until it shows (a busy machine may take a
    // moment). Balance and held are two reads: one may see the hold and the other not yet.
    let during = await heldOf();
    for (let i = 0; i < 50 && (during.held === 0 || during.balance + during.held !== 10); i++) {
      await new Promise((r) => setTimeout(r, 40));
      during = await heldOf();
    }
    expect(during).toEqual({ type: "leads", balance: 6, held: 4 });
    await slow;
    expect((await heldOf()).held).toBe(0);
  });

  it("a three-field mutation the balance covers only two of runs none and charges nothing (402 with the total)", async () => {
    const poor = await fundedSubscription(database, "owner", { ai: 0, leads: 0, skiptrace: 2 });
    const before = await ledgerState(database, poor);
    const res = await server.gql(
      `mutation($s: ID!) {
        a: lookupPhones(subscriptionId: $s, input: { phones: ["+15555550100"] }) { results { valid } }
        b: lookupPhones(subscriptionId: $s, input: { phones: ["+15555550101"] }) { results { valid } }
        c: lookupPhones(subscriptionId: $s, input: { phones: ["+15555550102"] }) { results { valid } }
      }`,
      { s: poor },
      { token: owner },
    );
    expect(res.status).toBe(402);
    expect(res.body.data).toBeNull();
    expect(res.body.errors).toHaveLength(1);
    expect(res.body.errors![0].extensions).toMatchObject({ code: "INSUFFICIENT_CREDITS", creditType: "skiptrace", required: 3, available: 2, subscriptionId: poor });
    expect(await ledgerState(database, poor)).toEqual(before);
    expect(res.body.extensions!.credits).toEqual({ charges: [], remaining: { [poor]: { skiptrace: 2 } } });
  });

  it("a field whose result never reaches the client (nulled by a sibling's system error) is refunded whole", async () => {
    const before = await ledgerState(database, sub);
    const res = await server.gql(
      `mutation($s: ID!) {
        a: lookupPhones(subscriptionId: $s, input: { phones: ["+15555550100"] }) { results { valid } }
        b: lookupPhones(subscriptionId: $s, input: { phones: ["+15555550101"] }) { results { valid } }
        c: runAiTask(subscriptionId: $s, input: { prompt: "hi" }) { tokensUsed }
      }`,
      { s: sub },
      { token: owner, headers: { "x-simulate-failure": "system" } },
    );
    // Every provider call fails with the header, so a fails first and stops the mutation: data is null.
    expect(res.body.data).toBeNull();
    expect(res.body.errors![0].extensions.code).toBe("INTERNAL_SERVER_ERROR");
    const charges = res.body.extensions!.credits.charges;
    expect(charges.map((c: { path: string[]; refunded: number; cost: number }) => [c.path[0], c.refunded, c.cost])).toEqual([
      ["a", 1, 0],
      ["b", 1, 0],
      ["c", 1, 0],
    ]);
    expect((await ledgerState(database, sub)).balances).toEqual(before.balances);
    expect(await auditLedger(database.db)).toMatchObject({ ok: true });
  });

  it("every balance still equals the sum of its ledger", async () => {
    expect(await auditLedger(database.db)).toMatchObject({ ok: true, mismatches: [] });
  });
});
