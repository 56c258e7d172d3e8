/**
 * Correctness under concurrency on real PostgreSQL: many simultaneous debits on one balance, exactly
 * the affordable number succeed, the balance ends at its floor, and the ledger sums match.
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditLedger } from "../../src/ledger/audit.js";
import { createPostgresDatabase, type TestDatabase } from "../helpers/databases.js";
import { postgresAvailable } from "../helpers/services.js";
import { fundedSubscription, startTestServer, userToken, type TestServer } from "../helpers/test-app.js";
import { ledgerEntries, ledgerState } from "../helpers/ledger-state.js";

describe.skipIf(!postgresAvailable)("concurrent debits on PostgreSQL", () => {
  let database: TestDatabase;
  let server: TestServer;

  beforeAll(async () => {
    database = await createPostgresDatabase(20);
    server = await startTestServer({ database, env: { RATE_LIMIT_DEFAULT: "100000/1m", SIMULATE_FAILURES: "1" } });
  });
  afterAll(async () => {
    await server?.close();
    await database?.dispose();
  });

  it("200 simultaneous 1-credit calls against 50 credits: exactly 50 succeed, balance 0, ledger matches", async () => {
    const sub = await fundedSubscription(database, "hot-user", { leads: 50 });
    const token = await userToken("hot-user");
    const mutation = `mutation($s: ID!) { searchLeads(subscriptionId: $s, input: { query: "roofers", limit: 1 }) { total } }`;

    const responses = await Promise.all(Array.from({ length: 200 }, () => server.gql(mutation, { s: sub }, { token })));

    const byStatus = new Map<number, number>();
    for (const r of responses) byStatus.set(r.status, (byStatus.get(r.status) ?? 0) + 1);
    expect(Object.fromEntries(byStatus)).toEqual({ 200: 50, 402: 150 });
    for (const r of responses.filter((r) => r.status === 402)) {
      expect(r.body.errors![0].extensions).toMatchObject({ code: "INSUFFICIENT_CREDITS", required: 1 });
    }
    // Every success saw a distinct balance after its debit: 49, 48, … 0.
    const remaining = responses.filter((r) => r.status === 200).map((r) => r.body.extensions!.credits.charges[0].remaining);
    expect(remaining.sort((a: number, b: number) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));

    expect((await ledgerState(database, sub)).balances.leads).toBe(0);
    const debits = (await ledgerEntries(database, sub)).filter((e) => e.kind === "DEBIT");
    expect(debits).toHaveLength(50);
    expect(debits.reduce((sum, e) => sum + e.amount, 0)).toBe(-50);
    expect(await auditLedger(database.db)).toMatchObject({ ok: true });
  });

  it("mixed prices on one balance never overdraw it", async () => {
    // Phone lookups have no meter: each costs its price, so the balance only falls.
    const sub = await fundedSubscription(database, "mixed-user", { skiptrace: 100 });
    const token = await userToken("mixed-user");
    const mutation = `mutation($s: ID!, $p: [String!]!) { lookupPhones(subscriptionId: $s, input: { phones: $p }) { results { valid } } }`;
    const sizes = Array.from({ length: 120 }, (_, i) => (i % 7) + 1);
    const responses = await Promise.all(
      sizes.map((n) => server.gql(mutation, { s: sub, p: Array.from({ length: n }, (_, k) => `+1555555${String(k).padStart(4, "0")}`) }, { token })),
    );
    const charged = responses.filter((r) => r.status === 200).reduce((sum, r) => sum + r.body.extensions!.credits.charges[0].charged, 0);
    expect(responses.every((r) => r.status === 200 || r.status === 402)).toBe(true);
    const { balances } = await ledgerState(database, sub);
    expect(balances.skiptrace).toBe(100 - charged);
    expect(balances.skiptrace).toBeGreaterThanOrEqual(0);
    // The balance only falls here, so a call refused at any moment needed more than what is left at the
    // end: no call was refused while it would have fit.
    const refusedNeeds = responses.filter((r) => r.status === 402).map((r) => r.body.errors![0].extensions.required as number);
    expect(refusedNeeds.length).toBeGreaterThan(0);
    expect(balances.skiptrace).toBeLessThan(Math.min(...refusedNeeds));
    expect(await auditLedger(database.db)).toMatchObject({ ok: true });
  });

  it("200 concurrent mixed operations on one hot subscription: balance = ledger, never negative, every hold settled", async () => {
    const sub = await fundedSubscription(database, "mixed-ops", { ai: 150, leads: 400, skiptrace: 150 });
    const token = await userToken("mixed-ops");
    const ai = `a: runAiTask(subscriptionId: $s, input: { prompt: "summarise", maxTokens: 1500 }) { tokensUsed }`;
    const leads = `b: searchLeads(subscriptionId: $s, input: { query: $q, limit: 7 }) { leads { name } }`;
    const trace = `c: skipTrace(subscriptionId: $s, input: { records: [{ firstName: $q, lastName: "Doe", address: "1 Main St" }, { firstName: "Jo", lastName: $q, address: "2 Main St" }] }) { matches { recordIndex } }`;
    const phones = `d: lookupPhones(subscriptionId: $s, input: { phones: ["+15555550100"] }) { results { valid } }`;
    const shapes = [[ai], [leads], [trace, phones], [ai, leads, trace], [phones, leads]];
    const responses = await Promise.all(
      Array.from({ length: 200 }, (_, i) => {
        const fields = shapes[i % shapes.length];
        const headers: Record<string, string> = i % 11 === 0 ? { "x-simulate-failure": "system" } : i % 13 === 0 ? { "x-simulate-failure": "input" } : {};
        return server.gql(`mutation($s: ID!, $q: String!) { ${fields.join("\n")} }`, { s: sub, q: `q${i}` }, { token, headers });
      }),
    );
    expect(responses.every((r) => [200, 400, 402, 500].includes(r.status))).toBe(true);
    expect(responses.filter((r) => r.status === 200).length).toBeGreaterThan(50);
    // Every hold is settled (posted, released or refunded): nothing is left pending.
    const pending = await database.db.execute(sql`select count(*)::int as n from pending_charges where subscription_id = ${sub}::uuid`);
    expect(Number((pending as unknown as { rows: { n: number }[] }).rows[0].n)).toBe(0);
    const { balances } = await ledgerState(database, sub);
    for (const type of ["ai", "leads", "skiptrace"] as const) expect(balances[type]).toBeGreaterThanOrEqual(0);
    // What the responses say the calls cost is what the balances lost.
    const cost = { ai: 0, leads: 0, skiptrace: 0 } as Record<string, number>;
    for (const r of responses) for (const c of r.body.extensions?.credits?.charges ?? []) cost[c.type] += c.cost;
    expect(balances).toMatchObject({ ai: 150 - cost.ai, leads: 400 - cost.leads, skiptrace: 150 - cost.skiptrace });
    // A system error refunds the whole operation's holds; releases never exceed their debits.
    const entries = await ledgerEntries(database, sub);
    expect(entries.some((e) => e.kind === "RELEASE")).toBe(true);
    expect(entries.some((e) => e.kind === "REFUND")).toBe(true);
    expect(await auditLedger(database.db)).toMatchObject({ ok: true, mismatches: [] });
  }, 120_000);
});
