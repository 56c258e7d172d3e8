/**
 * Correctness under concurrency on real PostgreSQL: many simultaneous debits on one balance, exactly
 * the affordable number succeed, the balance ends at its floor, and the ledger sums match.
 */
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
    server = await startTestServer({ database, env: { RATE_LIMIT_DEFAULT: "100000/1m" } });
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
    const sub = await fundedSubscription(database, "mixed-user", { leads: 100 });
    const token = await userToken("mixed-user");
    const mutation = `mutation($s: ID!, $n: Int!) { searchLeads(subscriptionId: $s, input: { query: "x", limit: $n }) { total } }`;
    const limits = Array.from({ length: 120 }, (_, i) => (i % 7) + 1);
    const responses = await Promise.all(limits.map((n) => server.gql(mutation, { s: sub, n }, { token })));
    const charged = responses.filter((r) => r.status === 200).reduce((sum, r) => sum + r.body.extensions!.credits.charges[0].charged, 0);
    expect(responses.every((r) => r.status === 200 || r.status === 402)).toBe(true);
    const { balances } = await ledgerState(database, sub);
    expect(balances.leads).toBe(100 - charged);
    expect(balances.leads).toBeGreaterThanOrEqual(0);
    // The balance only falls here, so a call refused at any moment needed more than what is left at the
    // end: no call was refused while it would have fit.
    const refusedNeeds = responses.filter((r) => r.status === 402).map((r) => r.body.errors![0].extensions.required as number);
    expect(refusedNeeds.length).toBeGreaterThan(0);
    expect(balances.leads).toBeLessThan(Math.min(...refusedNeeds));
    expect(await auditLedger(database.db)).toMatchObject({ ok: true });
  });
});
