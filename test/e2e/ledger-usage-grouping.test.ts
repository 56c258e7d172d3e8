/**
 * creditUsage and creditStats over HTTP against figures computed by hand: a known mix of debits,
 * whole and partial refunds, grants and an adjustment is written through the ledger functions, plus
 * back-dated entries (straight SQL inserts; the ledger only refuses UPDATE and DELETE) for the day
 * grouping and the time window. Every grouping is compared with the expected buckets exactly.
 */
import { sql } from "drizzle-orm";
import { holdOne, postHold, voidHold } from "../helpers/ledger-commands.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../../src/db/database.js";
import { changeBalance } from "../../src/ledger/change-balance.js";
import { refundDebit } from "../../src/ledger/refund-charge.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { adminToken, fundedSubscription, startTestServer, userToken, type TestServer } from "../helpers/test-app.js";
import { sendTyped } from "../helpers/typed-gql.js";
import { CreditLedgerDocument, CreditStatsDocument, CreditUsageDocument, type UsageGroupBy } from "../generated/graphql.js";

type Bucket = { key: string; calls: number; credits: number; refunded: number; averageCredits: number };
const bucket = (key: string, calls: number, credits: number, refunded: number): Bucket => ({
  key,
  calls,
  credits,
  refunded,
  averageCredits: calls === 0 ? 0 : credits / calls,
});
const byKey = (buckets: Bucket[]) => [...buckets].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));

describe.each(BACKENDS)("usage figures on %s", (backend) => {
  let database: TestDatabase;
  let server: TestServer;
  let a: string; // alice's subscription: the mixed workload
  let b: string; // bob's subscription
  let c: string; // carol's subscription: back-dated entries only
  let today: string;
  const startedAt = new Date(Date.now() - 60_000);
  const tokens: Record<string, string> = {};

  /** A debit through the charge path's own statement, settled, optionally refunded (pending: whole; settled: by amount). */
  async function charge(
    subscriptionId: string,
    creditType: string,
    amount: number,
    operation: string,
    actorId: string,
    after: { refundWhole?: boolean; partialRefunds?: number[] } = {},
  ): Promise<string> {
    const debit = await holdOne(database.db, {
      subscriptionId,
      creditType,
      amount,
      operation,
      estimated: amount,
      actorId,
      adminOverride: actorId.startsWith("admin"),
      requestId: `req-${operation}`,
    });
    if (!debit.ok) throw new Error(`debit refused: ${JSON.stringify(debit)}`);
    if (after.refundWhole) {
      const refund = await voidHold(database.db, { subscriptionId, entryId: debit.entryId, reason: "system error", actorId: null, requestId: null });
      expect(refund?.amount).toBe(amount);
      return debit.entryId;
    }
    expect(await postHold(database.db, subscriptionId, debit.entryId)).toBe(true);
    for (const part of after.partialRefunds ?? []) {
      const refund = await refundDebit(database.db, { entryId: debit.entryId, amount: part, actorId: "admin-1", reason: "goodwill", requestId: "req-refund" });
      expect(refund.ok).toBe(true);
    }
    return debit.entryId;
  }

  /** A back-dated ledger row (usage reads only the ledger, so the balance is left alone). */
  async function backdated(row: { kind: string; type: string; amount: number; operation?: string; at: string; refundOf?: string }): Promise<string> {
    const [inserted] = await queryRows<{ id: string }>(
      database.db,
      sql`insert into credit_ledger (subscription_id, credit_type, kind, amount, balance_after, operation, actor_id, refund_of, created_at)
          values (${c}::uuid, ${row.type}, ${row.kind}, ${row.amount}::int, 100, ${row.operation ?? null}, 'carol',
                  ${row.refundOf ?? null}::uuid, ${row.at}::timestamptz)
          returning id`,
    );
    return inserted.id;
  }

  beforeAll(async () => {
    database = await createTestDatabase(backend);
    server = await startTestServer({ database });
    a = await fundedSubscription(database, "alice", { ai: 100, leads: 100, skiptrace: 50 });
    b = await fundedSubscription(database, "bob", { ai: 100, leads: 100 });
    c = await fundedSubscription(database, "carol", {});
    for (const who of ["alice", "bob", "carol", "mallory"]) tokens[who] = await userToken(who);
    tokens.admin = await adminToken("admin-1");

    // Alice's subscription.
    await charge(a, "ai", 5, "Mutation.runAiTask", "alice");
    await charge(a, "ai", 3, "Mutation.runAiTask", "alice", { refundWhole: true });
    await charge(a, "leads", 10, "Mutation.searchLeads", "alice", { partialRefunds: [4] });
    await charge(a, "leads", 6, "Mutation.searchMls", "admin-1"); // an admin's override
    await charge(a, "skiptrace", 2, "Mutation.lookupPhones", "alice", { partialRefunds: [1, 1] });
    await changeBalance(database.db, { subscriptionId: a, creditType: "ai", kind: "ADJUSTMENT", delta: -1, actorId: "admin-1", reason: "fix", requestId: null });
    await changeBalance(database.db, { subscriptionId: a, creditType: "ai", kind: "GRANT", delta: 50, actorId: "admin-1", reason: "top-up", requestId: null });
    // Bob's subscription.
    await charge(b, "ai", 7, "Mutation.runAiTask", "bob");
    await charge(b, "leads", 4, "Mutation.searchLeads", "bob", { partialRefunds: [1] });

    // Carol's back-dated entries, around midnight UTC; the refund comes days later and still counts for its debit's day.
    await backdated({ kind: "GRANT", type: "ai", amount: 50, at: "2024-03-01T10:00:00Z" });
    await backdated({ kind: "DEBIT", type: "ai", amount: -4, operation: "Mutation.runAiTask", at: "2024-03-01T23:59:59.999Z" });
    await backdated({ kind: "DEBIT", type: "ai", amount: -2, operation: "Mutation.runAiTask", at: "2024-03-02T00:00:00Z" });
    const leads = await backdated({ kind: "DEBIT", type: "leads", amount: -9, operation: "Mutation.searchLeads", at: "2024-03-02T12:00:00Z" });
    await backdated({ kind: "REFUND", type: "leads", amount: 9, operation: "Mutation.searchLeads", at: "2024-03-05T08:00:00Z", refundOf: leads });
    await backdated({ kind: "DEBIT", type: "ai", amount: -1, operation: "Mutation.runAiTask", at: "2024-03-03T00:00:00Z" });

    // The UTC day of today's debits, read back from the ledger itself.
    const ledger = await sendTyped(server, CreditLedgerDocument, { subscriptionId: a, filter: { kinds: ["DEBIT"] } }, { token: tokens.alice });
    const days = new Set(ledger.body.data!.creditLedger.edges.map((e) => e.node.createdAt.slice(0, 10)));
    expect(days.size).toBe(1); // a run that straddles midnight UTC would need two buckets below
    today = [...days][0];
  });
  afterAll(async () => {
    await server?.close();
    await database?.dispose();
  });

  const usage = async (subscriptionId: string, groupBy: UsageGroupBy, token: string, window: { from?: string; to?: string } = {}) => {
    const response = await sendTyped(server, CreditUsageDocument, { subscriptionId, groupBy, ...window }, { token });
    expect(response.body.errors).toBeUndefined();
    return response.body.data!.creditUsage;
  };
  const stats = async (groupBy: UsageGroupBy, window: { from?: string; to?: string } = {}) => {
    const response = await sendTyped(server, CreditStatsDocument, { groupBy, ...window }, { token: tokens.admin });
    expect(response.body.errors).toBeUndefined();
    return response.body.data!.creditStats;
  };

  it("creditUsage of one subscription, every grouping", async () => {
    expect(await usage(a, "OPERATION", tokens.alice)).toEqual([
      bucket("Mutation.lookupPhones", 1, 0, 2),
      bucket("Mutation.runAiTask", 2, 5, 3),
      bucket("Mutation.searchLeads", 1, 6, 4),
      bucket("Mutation.searchMls", 1, 6, 0),
    ]);
    expect(await usage(a, "TYPE", tokens.alice)).toEqual([bucket("ai", 2, 5, 3), bucket("leads", 2, 12, 4), bucket("skiptrace", 1, 0, 2)]);
    expect(await usage(a, "DAY", tokens.alice)).toEqual([bucket(today, 5, 17, 9)]);
    expect(await usage(a, "USER", tokens.alice)).toEqual([bucket("admin-1", 1, 6, 0), bucket("alice", 4, 11, 9)]);
    expect(await usage(a, "SUBSCRIPTION", tokens.alice)).toEqual([bucket(a, 5, 17, 9)]);
    expect((await usage(a, "USER", tokens.alice))[1].averageCredits).toBe(2.75);
  });

  it("the day grouping cuts at midnight UTC and keeps a late refund with its debit's day", async () => {
    expect(await usage(c, "DAY", tokens.carol)).toEqual([
      bucket("2024-03-01", 1, 4, 0),
      bucket("2024-03-02", 2, 2, 9),
      bucket("2024-03-03", 1, 1, 0),
    ]);
  });

  it("the window takes debits from `from` (inclusive) to `to` (exclusive)", async () => {
    const day2 = { from: "2024-03-02T00:00:00.000Z", to: "2024-03-03T00:00:00.000Z" };
    expect(await usage(c, "DAY", tokens.carol, day2)).toEqual([bucket("2024-03-02", 2, 2, 9)]);
    expect(await usage(c, "OPERATION", tokens.carol, day2)).toEqual([bucket("Mutation.runAiTask", 1, 2, 0), bucket("Mutation.searchLeads", 1, 0, 9)]);
    const lastMillisecond = { from: "2024-03-01T23:59:59.999Z", to: "2024-03-02T00:00:00.000Z" };
    expect(await usage(c, "TYPE", tokens.carol, lastMillisecond)).toEqual([bucket("ai", 1, 4, 0)]);
    expect(await usage(c, "TYPE", tokens.carol, { from: "2024-03-03T00:00:00.001Z" })).toEqual([]);
    expect(await usage(c, "TYPE", tokens.carol, { to: "2024-03-02T00:00:00.000Z" })).toEqual([bucket("ai", 1, 4, 0)]);
  });

  it("creditStats across subscriptions, every grouping", async () => {
    const recent = { from: startedAt.toISOString() }; // leaves carol's back-dated entries out
    expect(await stats("OPERATION", recent)).toEqual([
      bucket("Mutation.lookupPhones", 1, 0, 2),
      bucket("Mutation.runAiTask", 3, 12, 3),
      bucket("Mutation.searchLeads", 2, 9, 5),
      bucket("Mutation.searchMls", 1, 6, 0),
    ]);
    expect(await stats("TYPE", recent)).toEqual([bucket("ai", 3, 12, 3), bucket("leads", 3, 15, 5), bucket("skiptrace", 1, 0, 2)]);
    expect(await stats("DAY", recent)).toEqual([bucket(today, 7, 27, 10)]);
    expect(await stats("USER", recent)).toEqual([bucket("admin-1", 1, 6, 0), bucket("alice", 4, 11, 9), bucket("bob", 2, 10, 1)]);
    expect(await stats("SUBSCRIPTION", recent)).toEqual(byKey([bucket(a, 5, 17, 9), bucket(b, 2, 10, 1)]));
    // Without a window, carol's history is in too.
    expect(await stats("SUBSCRIPTION")).toEqual(byKey([bucket(a, 5, 17, 9), bucket(b, 2, 10, 1), bucket(c, 4, 7, 9)]));
    expect((await stats("DAY")).map((x) => x.key)).toEqual(["2024-03-01", "2024-03-02", "2024-03-03", today]);
  });

  it("who may read what", async () => {
    const code = (response: { status: number; body: { errors?: { extensions: Record<string, unknown> }[] } }) => [
      response.status,
      response.body.errors?.[0]?.extensions.code,
    ];
    // An admin may read any subscription's usage; another user may not.
    expect(await usage(a, "TYPE", tokens.admin)).toHaveLength(3);
    expect(code(await sendTyped(server, CreditUsageDocument, { subscriptionId: a, groupBy: "TYPE" }, { token: tokens.mallory }))).toEqual([403, "FORBIDDEN"]);
    expect(code(await sendTyped(server, CreditUsageDocument, { subscriptionId: a, groupBy: "TYPE" }))).toEqual([401, "UNAUTHENTICATED"]);
    expect(code(await sendTyped(server, CreditUsageDocument, { subscriptionId: "nope", groupBy: "TYPE" }, { token: tokens.alice }))).toEqual([404, "NOT_FOUND"]);
    // creditStats is for admins only.
    expect(code(await sendTyped(server, CreditStatsDocument, { groupBy: "TYPE" }, { token: tokens.alice }))).toEqual([403, "FORBIDDEN"]);
    // A reversed window is refused, not answered with nothing.
    const reversed = { from: "2024-03-03T00:00:00Z", to: "2024-03-02T00:00:00Z" };
    expect(code(await sendTyped(server, CreditUsageDocument, { subscriptionId: c, groupBy: "DAY", ...reversed }, { token: tokens.carol }))).toEqual([
      400,
      "BAD_USER_INPUT",
    ]);
    expect(code(await sendTyped(server, CreditStatsDocument, { groupBy: "DAY", ...reversed }, { token: tokens.admin }))).toEqual([400, "BAD_USER_INPUT"]);
    // A subscription with no debits has no buckets.
    const empty = await fundedSubscription(database, "alice", { ai: 1 });
    expect(await usage(empty, "OPERATION", tokens.alice)).toEqual([]);
  });
});
