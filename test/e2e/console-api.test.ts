/**
 * The API the console needs (issue 18), over HTTP with the codegen'd documents of
 * test/operations/console-api.graphql: the admin's subscription search (filters, prefixes, newest
 * first, cursor pages), statusReason, the ledger across subscriptions, and usage grouped twice with
 * days counted in a time zone. Every case runs on PGlite and on real PostgreSQL.
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../../src/db/database.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { adminToken, fundedSubscription, startTestServer, userToken, type TestServer } from "../helpers/test-app.js";
import { sendTyped } from "../helpers/typed-gql.js";
import {
  LedgerAcrossSubscriptionsDocument,
  StatsTwoLevelsDocument,
  SubscriptionStatusReasonDocument,
  SubscriptionsDocument,
  UsageTwoLevelsDocument,
  type SubscriptionFilter,
} from "../generated/graphql.js";

const SET_STATUS = `mutation ($id: ID!, $status: SubscriptionStatus!, $reason: String!) {
  setSubscriptionStatus(id: $id, status: $status, reason: $reason) { id status }
}`;

describe.each(BACKENDS)("the console's API on %s", (backend) => {
  let database: TestDatabase;
  let server: TestServer;
  let admin: string;
  /** Opened in this order, so newest first is the reverse. */
  const opened: { id: string; owner: string }[] = [];

  async function search(filter: SubscriptionFilter | null, first?: number, after?: string, token = admin) {
    return sendTyped(server, SubscriptionsDocument, { filter, first, after }, { token });
  }
  async function idsOf(filter: SubscriptionFilter | null): Promise<string[]> {
    const res = await search(filter, 1000);
    expect(res.body.errors, JSON.stringify(res.body.errors)).toBeUndefined();
    return res.body.data!.subscriptions.edges.map((e) => e.node.id);
  }

  beforeAll(async () => {
    database = await createTestDatabase(backend);
    server = await startTestServer({ database });
    admin = await adminToken();
    for (const owner of ["acme-1", "acme-2", "globex", "acme_3", "initech"]) {
      opened.push({ id: await fundedSubscription(database, owner, { ai: 10, leads: 5 }), owner });
    }
  });
  afterAll(async () => {
    await server?.close();
    await database?.dispose();
  });

  it("subscriptions lists every subscription newest first, in cursor pages that add up to the whole", async () => {
    const newestFirst = opened.map((s) => s.id).reverse();
    expect(await idsOf(null)).toEqual(newestFirst);

    const seen: string[] = [];
    let after: string | undefined;
    for (let page = 0; page < 10; page++) {
      const res = await search(null, 2, after);
      const { edges, pageInfo } = res.body.data!.subscriptions;
      seen.push(...edges.map((e) => e.node.id));
      expect(pageInfo.endCursor).toBe(edges.at(-1)?.cursor ?? null);
      if (!pageInfo.hasNextPage) break;
      after = pageInfo.endCursor!;
    }
    expect(seen).toEqual(newestFirst);

    // A subscription opened while paging appears at the top and does not shift later pages.
    const first = await search(null, 2);
    const late = await fundedSubscription(database, "late-comer", {});
    const second = await search(null, 2, first.body.data!.subscriptions.pageInfo.endCursor!);
    expect(second.body.data!.subscriptions.edges.map((e) => e.node.id)).toEqual(newestFirst.slice(2, 4));
    expect((await idsOf(null))[0]).toBe(late);
    opened.push({ id: late, owner: "late-comer" });
  });

  it("filters by owner, status, plan, and an owner or subscription id prefix", async () => {
    const byOwner = (owner: string) => opened.find((s) => s.owner === owner)!.id;
    expect(await idsOf({ ownerId: "globex" })).toEqual([byOwner("globex")]);
    expect(await idsOf({ search: "acme" })).toEqual([byOwner("acme_3"), byOwner("acme-2"), byOwner("acme-1")]);
    // LIKE's wildcards are plain characters here: "acme_" matches only the owner spelled with "_".
    expect(await idsOf({ search: "acme_" })).toEqual([byOwner("acme_3")]);
    expect(await idsOf({ search: "%" })).toEqual([]);
    expect(await idsOf({ search: "  " })).toHaveLength(opened.length);

    const target = byOwner("initech");
    for (const prefix of [target.slice(0, 6), target.slice(0, 9), target.slice(0, 9).toUpperCase(), target]) {
      expect(await idsOf({ search: prefix }), prefix).toContain(target);
    }
    expect(await idsOf({ search: target })).toEqual([target]);

    const reason = "chargeback on invoice 42";
    const suspended = await server.gql(SET_STATUS, { id: target, status: "SUSPENDED", reason }, { token: admin });
    expect(suspended.body.errors).toBeUndefined();
    expect(await idsOf({ status: "SUSPENDED" })).toEqual([target]);
    expect(await idsOf({ status: "ACTIVE", search: "initech" })).toEqual([]);
    expect(await idsOf({ plan: "test", ownerId: "initech" })).toEqual([target]);
    expect(await idsOf({ plan: "gold" })).toEqual([]);

    // statusReason: null until a change, then the reason given, on every read path.
    const reasonOf = async (id: string) => (await sendTyped(server, SubscriptionStatusReasonDocument, { id }, { token: admin })).body.data!.subscription;
    expect(await reasonOf(byOwner("globex"))).toMatchObject({ status: "ACTIVE", statusReason: null });
    expect(await reasonOf(target)).toMatchObject({ status: "SUSPENDED", statusReason: reason });
    const listed = (await search({ ownerId: "initech" })).body.data!.subscriptions.edges[0].node;
    expect(listed.statusReason).toBe(reason);
    await server.gql(SET_STATUS, { id: target, status: "ACTIVE", reason: "paid" }, { token: admin });
    expect(await reasonOf(target)).toMatchObject({ status: "ACTIVE", statusReason: "paid" });
  });

  it("subscriptions is for admins, and refuses bad arguments with BAD_USER_INPUT", async () => {
    const anonymous = await sendTyped(server, SubscriptionsDocument, {});
    expect(anonymous.body.errors?.[0].extensions.code).toBe("UNAUTHENTICATED");
    const user = await search(null, undefined, undefined, await userToken("acme-1"));
    expect(user.status).toBe(403);
    expect(user.body.errors?.[0].extensions.code).toBe("FORBIDDEN");

    const foreignCursor = Buffer.from("12").toString("base64url"); // a ledger cursor, not a subscription's
    for (const [filter, first, after] of [
      [null, 0, undefined],
      [null, 1001, undefined],
      [null, undefined, "not a cursor"],
      [null, undefined, foreignCursor],
      // Longer than any user id (255 characters, src/util/text.ts).
      [{ search: "x".repeat(256) }, undefined, undefined],
      [{ ownerId: "y".repeat(256) }, undefined, undefined],
      [{ plan: "z".repeat(201) }, undefined, undefined],
    ] as const) {
      const res = await search(filter, first, after);
      expect(res.body.errors?.[0].extensions.code, JSON.stringify({ filter, first, after })).toBe("BAD_USER_INPUT");
      expect(JSON.stringify(res.body)).not.toMatch(/select|stack/i);
    }
  });

  it("creditLedger without subscriptionId: every subscription's entries newest first for admins, FORBIDDEN for users", async () => {
    const all = await sendTyped(server, LedgerAcrossSubscriptionsDocument, { first: 1000 }, { token: admin });
    expect(all.body.errors).toBeUndefined();
    const entries = all.body.data!.creditLedger.edges.map((e) => e.node);
    const rows = await queryRows<{ id: string }>(database.db, sql`select id from credit_ledger order by seq desc`);
    expect(entries.map((e) => e.id)).toEqual(rows.map((r) => r.id));
    expect(new Set(entries.map((e) => e.subscriptionId)).size).toBeGreaterThanOrEqual(5);

    // Pages of 3 add up to the same list; filters apply across subscriptions.
    const paged: string[] = [];
    let after: string | undefined;
    for (let page = 0; page < 20; page++) {
      const res = await sendTyped(server, LedgerAcrossSubscriptionsDocument, { first: 3, after }, { token: admin });
      const { edges, pageInfo } = res.body.data!.creditLedger;
      paged.push(...edges.map((e) => e.node.id));
      if (!pageInfo.hasNextPage) break;
      after = pageInfo.endCursor!;
    }
    expect(paged).toEqual(rows.map((r) => r.id));
    const leads = await sendTyped(server, LedgerAcrossSubscriptionsDocument, { filter: { type: "leads" } }, { token: admin });
    expect(leads.body.data!.creditLedger.edges.map((e) => e.node.type)).toEqual(entries.filter((e) => e.type === "leads").map(() => "leads"));

    const user = await sendTyped(server, LedgerAcrossSubscriptionsDocument, {}, { token: await userToken("acme-1") });
    expect(user.status).toBe(403);
    expect(user.body.errors?.[0].extensions.code).toBe("FORBIDDEN");
    expect(user.body.data ?? null).toBeNull();
  });

  it("creditUsage and creditStats group by two dimensions and count days in the time zone asked for", async () => {
    const subscriptionId = await fundedSubscription(database, "night-owl", {});
    // Debits written straight into the ledger at fixed times (usage reads only the ledger).
    const debit = (type: string, amount: number, operation: string, at: string) =>
      queryRows(
        database.db,
        sql`insert into credit_ledger (subscription_id, credit_type, kind, amount, balance_after, operation, actor_id, created_at)
            values (${subscriptionId}::uuid, ${type}, 'DEBIT', ${-amount}::int, 100, ${operation}, 'night-owl', ${at}::timestamptz)`,
      );
    await debit("ai", 3, "Mutation.runAiTask", "2026-03-01T22:30:00Z"); // Berlin: Mar 1 23:30; Tokyo: Mar 2
    await debit("ai", 5, "Mutation.runAiTask", "2026-03-01T23:30:00Z"); // Berlin: Mar 2 00:30
    await debit("leads", 7, "Mutation.searchLeads", "2026-03-01T23:45:00Z"); // Berlin: Mar 2 00:45
    await debit("leads", 2, "Mutation.searchLeads", "2026-03-02T12:00:00Z");
    const window = { from: "2026-03-01T00:00:00Z", to: "2026-03-03T00:00:00Z" };
    const usage = async (variables: Record<string, unknown>) => {
      const res = await sendTyped(server, UsageTwoLevelsDocument, { subscriptionId, groupBy: "DAY", ...window, ...variables } as never, { token: admin });
      expect(res.body.errors, JSON.stringify(res.body.errors)).toBeUndefined();
      return res.body.data!.creditUsage.map(({ key, subKey, calls, credits }) => ({ key, subKey, calls, credits }));
    };

    expect(await usage({})).toEqual([
      { key: "2026-03-01", subKey: null, calls: 3, credits: 15 },
      { key: "2026-03-02", subKey: null, calls: 1, credits: 2 },
    ]);
    expect(await usage({ timeZone: "Europe/Berlin", thenBy: "TYPE" })).toEqual([
      { key: "2026-03-01", subKey: "ai", calls: 1, credits: 3 },
      { key: "2026-03-02", subKey: "ai", calls: 1, credits: 5 },
      { key: "2026-03-02", subKey: "leads", calls: 2, credits: 9 },
    ]);
    expect(await usage({ timeZone: "America/Los_Angeles", groupBy: "TYPE", thenBy: "DAY" })).toEqual([
      { key: "ai", subKey: "2026-03-01", calls: 2, credits: 8 },
      { key: "leads", subKey: "2026-03-01", calls: 1, credits: 7 },
      { key: "leads", subKey: "2026-03-02", calls: 1, credits: 2 },
    ]);
    expect(await usage({ timeZone: "Asia/Tokyo", groupBy: "OPERATION", thenBy: "DAY" })).toEqual([
      { key: "Mutation.runAiTask", subKey: "2026-03-02", calls: 2, credits: 8 },
      { key: "Mutation.searchLeads", subKey: "2026-03-02", calls: 2, credits: 9 },
    ]);

    // creditStats: the same grouping across subscriptions (only these debits fall in the window).
    const stats = await sendTyped(server, StatsTwoLevelsDocument, { groupBy: "DAY", thenBy: "SUBSCRIPTION", timeZone: "Europe/Berlin", ...window }, { token: admin });
    expect(stats.body.data!.creditStats.map(({ key, subKey, credits }) => ({ key, subKey, credits }))).toEqual([
      { key: "2026-03-01", subKey: subscriptionId, credits: 3 },
      { key: "2026-03-02", subKey: subscriptionId, credits: 14 },
    ]);

    for (const variables of [{ timeZone: "Mars/Olympus_Mons" }, { timeZone: "" }, { timeZone: "UTC'; drop table credit_ledger; --" }, { thenBy: "DAY" }]) {
      const res = await sendTyped(server, UsageTwoLevelsDocument, { subscriptionId, groupBy: "DAY", ...variables } as never, { token: admin });
      expect(res.body.errors?.[0].extensions.code, JSON.stringify(variables)).toBe("BAD_USER_INPUT");
      const statsRes = await sendTyped(server, StatsTwoLevelsDocument, { groupBy: "DAY", ...variables } as never, { token: admin });
      expect(statsRes.body.errors?.[0].extensions.code, JSON.stringify(variables)).toBe("BAD_USER_INPUT");
    }
    // The owner reads their own usage in their zone; others still may not.
    const own = await sendTyped(server, UsageTwoLevelsDocument, { subscriptionId, groupBy: "DAY", timeZone: "europe/berlin", ...window }, { token: await userToken("night-owl") });
    expect(own.body.data!.creditUsage.map((b) => b.key)).toEqual(["2026-03-01", "2026-03-02"]);
    const other = await sendTyped(server, UsageTwoLevelsDocument, { subscriptionId, groupBy: "DAY" }, { token: await userToken("acme-1") });
    expect(other.body.errors?.[0].extensions.code).toBe("FORBIDDEN");
  });
});
