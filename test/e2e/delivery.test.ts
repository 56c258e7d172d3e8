/**
 * Pay only for delivered results (DESIGN.md, "The charge path", step 8): a field whose result does
 * not reach the client is refunded whole: nulled through a non-null parent by a sibling's system
 * error, or the client went away before the response. On PGlite and PostgreSQL, over HTTP.
 */
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp, type App } from "../../src/app/create-app.js";
import { loadConfig } from "../../src/config/config.js";
import { auditLedger } from "../../src/ledger/audit.js";
import { createLogger } from "../../src/observability/logger.js";
import type { OperationProviders, PhoneLookupRequest, ProviderCallOptions } from "../../src/providers/providers.js";
import { SimulatedProviders } from "../../src/providers/simulated/simulated-providers.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { ledgerEntries, ledgerState } from "../helpers/ledger-state.js";
import { fundedSubscription, postGraphQL, userToken } from "../helpers/test-app.js";

/** The simulators, except that looking up the phone "+15555550999" fails on the provider's side. */
class OneFailingPhone extends SimulatedProviders {
  override async lookupPhones(req: PhoneLookupRequest, options: ProviderCallOptions) {
    if (req.phones.includes("+15555550999")) throw new Error("carrier API down");
    return super.lookupPhones(req, options);
  }
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

  beforeAll(async () => {
    database = await createTestDatabase(backend);
    const config = loadConfig({
      PGLITE_DIR: "memory://",
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "silent",
      NODE_ENV: "test",
      SIMULATE_FAILURES: "1",
      SIMULATE_SLOW_MS: "1500",
    });
    const providers: OperationProviders = new OneFailingPhone();
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
    let entries = await ledgerEntries(database, sub);
    for (let i = 0; i < 40 && !entries.some((e) => e.kind === "REFUND"); i++) {
      await new Promise((r) => setTimeout(r, 100));
      entries = await ledgerEntries(database, sub);
    }
    expect(entries.map((e) => [e.kind, e.amount])).toEqual([
      ["GRANT", 10],
      ["DEBIT", -5],
      ["REFUND", 5],
    ]);
    expect((await ledgerState(database, sub)).balances.leads).toBe(10);
  });
});
