/**
 * With the subscription check folded into the debit statement (coalescing ledger), the charge path
 * still answers in DESIGN.md's order: NOT_FOUND, FORBIDDEN (not the owner), FORBIDDEN (inactive)
 * come before RATE_LIMITED, which comes before INSUFFICIENT_CREDITS. The rate limiter runs before
 * the debit now, so these cases put a caller over the limit and check step 3 still wins; and a call
 * step 3 refuses gives its rate-limit record back, so it costs the caller nothing of the limit.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { setSubscriptionStatus } from "../../src/subscriptions/subscription-store.js";
import { auditLedger } from "../../src/ledger/audit.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { fundedSubscription, startTestServer, userToken, type TestServer } from "../helpers/test-app.js";
import { ledgerState } from "../helpers/ledger-state.js";

const SEARCH = `mutation Search($s: ID!) { searchLeads(subscriptionId: $s, input: { query: "q", limit: 2 }) { total } }`;
const UNKNOWN = "00000000-0000-4000-8000-000000000000";

describe.each(BACKENDS)("folded authorization keeps the charge path's order on %s", (backend) => {
  let database: TestDatabase;
  let server: TestServer;
  let sub: string;
  let suspended: string;
  let poor: string;

  beforeAll(async () => {
    database = await createTestDatabase(backend);
    // One call per caller per minute: every caller's second call is over the limit.
    server = await startTestServer({ database, env: { RATE_LIMIT_DEFAULT: "1/1m" } });
    sub = await fundedSubscription(database, "owner", { leads: 100 });
    suspended = await fundedSubscription(database, "owner", { leads: 100 });
    await setSubscriptionStatus(database.db, suspended, "SUSPENDED", "test");
    poor = await fundedSubscription(database, "poor-owner", { leads: 1 });
  });
  afterAll(async () => {
    await server?.close();
    await database?.dispose();
  });

  const codes = async (token: string, subscriptionId: string, calls: number) => {
    const seen: string[] = [];
    for (let i = 0; i < calls; i++) {
      const res = await server.gql(SEARCH, { s: subscriptionId }, { token });
      seen.push(res.body.errors?.[0]?.extensions.code ?? "OK");
    }
    return seen;
  };

  it("an unknown subscription is NOT_FOUND, over the limit or not", async () => {
    expect(await codes(await userToken("caller-unknown"), UNKNOWN, 2)).toEqual(["NOT_FOUND", "NOT_FOUND"]);
  });

  it("someone else's subscription is FORBIDDEN, over the limit or not, and moves nothing", async () => {
    const before = await ledgerState(database, sub);
    expect(await codes(await userToken("stranger"), sub, 2)).toEqual(["FORBIDDEN", "FORBIDDEN"]);
    expect(await ledgerState(database, sub)).toEqual(before);
  });

  it("an inactive subscription is FORBIDDEN, over the limit or not", async () => {
    const before = await ledgerState(database, suspended);
    expect(await codes(await userToken("owner"), suspended, 2)).toEqual(["FORBIDDEN", "FORBIDDEN"]);
    expect(await ledgerState(database, suspended)).toEqual(before);
  });

  it("calls refused by authorization do not use up the caller's limit", async () => {
    const own = await fundedSubscription(database, "prober", { leads: 10 });
    const token = await userToken("prober");
    expect(await codes(token, sub, 1)).toEqual(["FORBIDDEN"]);
    expect(await codes(token, suspended, 1)).toEqual(["FORBIDDEN"]);
    expect(await codes(token, UNKNOWN, 1)).toEqual(["NOT_FOUND"]);
    // With a limit of one call a minute, the first call that may spend still runs.
    expect(await codes(token, own, 2)).toEqual(["OK", "RATE_LIMITED"]);
  });

  it("the owner is charged once, then RATE_LIMITED; a refused hold counts nothing against the limit", async () => {
    expect(await codes(await userToken("owner-2"), await fundedSubscription(database, "owner-2", { leads: 10 }), 2)).toEqual([
      "OK",
      "RATE_LIMITED",
    ]);
    // A call refused at the hold is not counted against the limit (DESIGN.md, step 6): the caller
    // can try again with credits, so a second 402 stays a 402.
    const token = await userToken("poor-owner");
    expect(await codes(token, poor, 2)).toEqual(["INSUFFICIENT_CREDITS", "INSUFFICIENT_CREDITS"]);
    expect(await auditLedger(database.db)).toMatchObject({ ok: true });
  });
});
