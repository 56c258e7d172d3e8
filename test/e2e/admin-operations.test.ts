/**
 * Admin operations over HTTP, on PGlite and PostgreSQL: createSubscription, setSubscriptionStatus,
 * grantCredits, adjustCredits, refundCharge, the admin creditAmount override of metered mutations,
 * and ledgerAudit. Each happy path checks the ledger entry (actor = the admin's token subject,
 * request id, reason); each refusal checks its code and that nothing in the database moved.
 */
import { sql } from "drizzle-orm";
import { holdOne, postHold, voidHold } from "../helpers/ledger-commands.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../../src/db/database.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { adminToken, fundedSubscription, startTestServer, userToken, type GraphQLResponse, type TestServer } from "../helpers/test-app.js";

const ADMIN = "admin-ops";
const OWNER = "owner-ops";
const MAX_INT = 2_147_483_647;
const UNKNOWN_ID = "00000000-0000-4000-8000-000000000000";

const ENTRY = "id subscriptionId type kind amount balanceAfter operation estimated actorId adminOverride reason refundOf requestId createdAt";
const SUBSCRIPTION = "id ownerId plan status createdAt balances { type balance }";

const CREATE = `mutation ($input: CreateSubscriptionInput!) { createSubscription(input: $input) { ${SUBSCRIPTION} } }`;
const SET_STATUS = `mutation ($id: ID!, $status: SubscriptionStatus!, $reason: String!) {
  setSubscriptionStatus(id: $id, status: $status, reason: $reason) { ${SUBSCRIPTION} } }`;
const GRANT = `mutation ($input: GrantCreditsInput!) { grantCredits(input: $input) { ${ENTRY} } }`;
const ADJUST = `mutation ($input: AdjustCreditsInput!) { adjustCredits(input: $input) { ${ENTRY} } }`;
const REFUND = `mutation ($input: RefundChargeInput!) { refundCharge(input: $input) { ${ENTRY} } }`;
const AUDIT = `query { ledgerAudit { checkedBalances ok mismatches { subscriptionId type balance ledgerSum } } }`;
const SEARCH_LEADS = `mutation ($sub: ID!, $limit: Int, $creditAmount: Int) {
  searchLeads(subscriptionId: $sub, input: { query: "plumbers", limit: $limit }, creditAmount: $creditAmount) { total } }`;

interface DatabaseState {
  balances: string;
  ledgerEntries: number;
  subscriptions: string;
}

describe.each(BACKENDS)("admin operations over HTTP on %s", (backend) => {
  let database: TestDatabase;
  let server: TestServer;
  let admin: string;
  let owner: string;

  beforeAll(async () => {
    database = await createTestDatabase(backend);
    // A generous default limit: these tests count credits, not calls.
    server = await startTestServer({ database, env: { RATE_LIMIT_DEFAULT: "10000/1m" } });
    admin = await adminToken(ADMIN);
    owner = await userToken(OWNER);
  });
  afterAll(async () => {
    await server?.close();
    await database?.dispose();
  });

  // ── helpers ────────────────────────────────────────────────────────────────────────────────

  const asAdmin = (query: string, variables?: Record<string, unknown>, requestId?: string) =>
    server.gql(query, variables, { token: admin, headers: requestId ? { "x-request-id": requestId } : {} });

  async function balanceOf(subscriptionId: string, type: string): Promise<number> {
    const rows = await queryRows<{ balance: number }>(
      database.db,
      sql`select balance from credit_balances where subscription_id = ${subscriptionId}::uuid and credit_type = ${type}`,
    );
    return Number(rows[0].balance);
  }

  async function ledgerRow(id: string) {
    const rows = await queryRows<Record<string, unknown>>(database.db, sql`select * from credit_ledger where id = ${id}::uuid`);
    return rows[0];
  }

  async function state(): Promise<DatabaseState> {
    const balances = await queryRows(database.db, sql`select subscription_id, credit_type, balance from credit_balances order by 1, 2`);
    const ledger = await queryRows<{ n: number | string }>(database.db, sql`select count(*) as n from credit_ledger`);
    const subscriptions = await queryRows(database.db, sql`select id, status, status_reason from billing_subscriptions order by id`);
    return { balances: JSON.stringify(balances), ledgerEntries: Number(ledger[0].n), subscriptions: JSON.stringify(subscriptions) };
  }

  function expectError(res: GraphQLResponse, code: string, message?: RegExp): void {
    expect(res.body.errors?.[0]?.extensions.code, JSON.stringify(res.body.errors)).toBe(code);
    const status = { BAD_USER_INPUT: 400, UNAUTHENTICATED: 401, INSUFFICIENT_CREDITS: 402, FORBIDDEN: 403, NOT_FOUND: 404, CONFLICT: 409 }[code];
    expect(res.status).toBe(status);
    if (message) expect(res.body.errors?.[0]?.message).toMatch(message);
    // A 409 says when to retry, as a 429 does (an outside audit of client retries).
    if (code === "CONFLICT") {
      expect(res.body.errors?.[0]?.extensions.retryAfterSeconds).toBe(2);
      expect(res.headers.get("retry-after")).toBe("2");
    }
    // Never SQL, a stack or an internal name.
    expect(JSON.stringify(res.body.errors)).not.toMatch(/stacktrace|select |insert |update |SQLSTATE|23514|22003|23503/i);
  }

  /** Runs each refused request and checks its code, and that no balance, entry or subscription changed. */
  async function expectRefusals(cases: [string, () => Promise<GraphQLResponse>, string, RegExp?][]): Promise<void> {
    const before = await state();
    for (const [name, send, code, message] of cases) {
      const res = await send();
      try {
        expectError(res, code, message);
      } catch (err) {
        throw new Error(`${name}: ${(err as Error).message}`);
      }
      expect(res.body.data ?? null, name).toBeNull();
    }
    expect(await state()).toEqual(before);
  }

  /** A settled debit made through the metered mutation, as its owner would: returns the DEBIT entry id. */
  async function chargedDebit(subscriptionId: string, limit: number): Promise<string> {
    const res = await server.gql(SEARCH_LEADS, { sub: subscriptionId, limit }, { token: owner });
    expect(res.body.errors).toBeUndefined();
    return res.body.extensions!.credits.charges[0].entryId;
  }

  // ── createSubscription ──────────────────────────────────────────────────────────────────────

  describe("createSubscription", () => {
    it("opens a subscription with a balance of every type and a GRANT entry per starting amount", async () => {
      const res = await asAdmin(
        CREATE,
        { input: { ownerId: "new-owner", plan: "pro", initialCredits: [{ type: "ai", amount: 50 }, { type: "leads", amount: 0 }] } },
        "req-create-1",
      );
      expect(res.status).toBe(200);
      expect(res.body.errors).toBeUndefined();
      const sub = res.body.data.createSubscription;
      expect(sub).toMatchObject({ ownerId: "new-owner", plan: "pro", status: "ACTIVE" });
      expect(Object.fromEntries(sub.balances.map((b: { type: string; balance: number }) => [b.type, b.balance]))).toEqual({
        ai: 50,
        leads: 0,
        skiptrace: 0,
      });
      const entries = await queryRows<Record<string, unknown>>(
        database.db,
        sql`select * from credit_ledger where subscription_id = ${sub.id}::uuid`,
      );
      expect(entries).toHaveLength(1);
      expect(entries[0]).toMatchObject({
        credit_type: "ai",
        kind: "GRANT",
        amount: 50,
        balance_after: 50,
        actor_id: ADMIN,
        request_id: "req-create-1",
        reason: "initial credits",
      });
    });

    it("opens one without starting credits; the owner sees it as theirs", async () => {
      const res = await asAdmin(CREATE, { input: { ownerId: "bare-owner", plan: "free" } });
      expect(res.body.errors).toBeUndefined();
      const sub = res.body.data.createSubscription;
      expect(sub.balances.every((b: { balance: number }) => b.balance === 0)).toBe(true);
      const seen = await server.gql(`query { viewer { subscriptions { id plan } } }`, {}, { token: await userToken("bare-owner") });
      expect(seen.body.data.viewer.subscriptions).toEqual([{ id: sub.id, plan: "free" }]);
    });

    it("refuses non-admins and bad input, and opens nothing", async () => {
      const create = (input: Record<string, unknown>, token = admin) => () => server.gql(CREATE, { input }, { token });
      const good = { ownerId: "x", plan: "p" };
      await expectRefusals([
        ["no token", () => server.gql(CREATE, { input: good }), "UNAUTHENTICATED"],
        ["not an admin", create(good, owner), "FORBIDDEN", /admin/i],
        ["blank ownerId", create({ ...good, ownerId: "  " }), "BAD_USER_INPUT", /ownerId/],
        // A user id's rule, shared with a token's sub (src/util/text.ts): at most 255 characters, kept verbatim.
        ["long ownerId", create({ ...good, ownerId: "o".repeat(256) }), "BAD_USER_INPUT", /ownerId.*255/],
        ["padded ownerId", create({ ...good, ownerId: " x " }), "BAD_USER_INPUT", /ownerId must not start or end with white space/],
        // A token's sub may not hold one (401), so such a subscription could never be used.
        ["an ownerId with a control character", create({ ...good, ownerId: "bob\u0007" }), "BAD_USER_INPUT", /ownerId must not contain control characters/],
        ["an ownerId with a C1 control character", create({ ...good, ownerId: "a\u0085b" }), "BAD_USER_INPUT", /ownerId must not contain control characters/],
        // The service key's actor id: its owner would share the service key's ledger actor and keys.
        ["the service key's ownerId", create({ ...good, ownerId: "service_role" }), "BAD_USER_INPUT", /ownerId must not be "service_role"/],
        ["empty plan", create({ ...good, plan: "" }), "BAD_USER_INPUT", /plan/],
        ["long plan", create({ ...good, plan: "p".repeat(201) }), "BAD_USER_INPUT", /plan/],
        ["unknown type", create({ ...good, initialCredits: [{ type: "gold", amount: 1 }] }), "BAD_USER_INPUT", /Unknown credit type "gold"/],
        [
          "duplicate type",
          create({ ...good, initialCredits: [{ type: "ai", amount: 1 }, { type: "ai", amount: 2 }] }),
          "BAD_USER_INPUT",
          /twice/,
        ],
        ["negative amount", create({ ...good, initialCredits: [{ type: "ai", amount: -1 }] }), "BAD_USER_INPUT", /0 or more/],
        ["beyond int32", create({ ...good, initialCredits: [{ type: "ai", amount: MAX_INT + 1 }] }), "BAD_USER_INPUT"],
      ]);
    });

    it("accepts names of exactly 200 characters", async () => {
      const res = await asAdmin(CREATE, { input: { ownerId: "o".repeat(200), plan: "p".repeat(200) } });
      expect(res.body.errors).toBeUndefined();
      expect(res.body.data.createSubscription.ownerId).toHaveLength(200);
    });
  });

  // ── setSubscriptionStatus ───────────────────────────────────────────────────────────────────

  describe("setSubscriptionStatus", () => {
    it("suspends a subscription (it can no longer spend) and reactivates it", async () => {
      const sub = await fundedSubscription(database, OWNER, { leads: 20 });
      const suspended = await asAdmin(SET_STATUS, { id: sub, status: "SUSPENDED", reason: "unpaid invoice" });
      expect(suspended.body.errors).toBeUndefined();
      expect(suspended.body.data.setSubscriptionStatus).toMatchObject({ id: sub, status: "SUSPENDED" });
      const [row] = await queryRows<{ status: string; status_reason: string }>(
        database.db,
        sql`select status, status_reason from billing_subscriptions where id = ${sub}::uuid`,
      );
      expect(row).toEqual({ status: "SUSPENDED", status_reason: "unpaid invoice" });

      const refused = await server.gql(SEARCH_LEADS, { sub, limit: 3 }, { token: owner });
      expectError(refused, "FORBIDDEN", /SUSPENDED/);
      expect(await balanceOf(sub, "leads")).toBe(20);

      const active = await asAdmin(SET_STATUS, { id: sub, status: "ACTIVE", reason: "paid" });
      expect(active.body.data.setSubscriptionStatus.status).toBe("ACTIVE");
      const spent = await server.gql(SEARCH_LEADS, { sub, limit: 3 }, { token: owner });
      expect(spent.body.errors).toBeUndefined();
      expect(await balanceOf(sub, "leads")).toBe(17);

      const cancelled = await asAdmin(SET_STATUS, { id: sub, status: "CANCELLED", reason: "closed account" });
      expect(cancelled.body.data.setSubscriptionStatus.status).toBe("CANCELLED");
      expectError(await server.gql(SEARCH_LEADS, { sub, limit: 3 }, { token: owner }), "FORBIDDEN", /CANCELLED/);
    });

    it("refuses non-admins, blank reasons, unknown statuses and missing subscriptions, and changes nothing", async () => {
      const sub = await fundedSubscription(database, OWNER, {});
      const set = (variables: Record<string, unknown>, token = admin) => () => server.gql(SET_STATUS, variables, { token });
      await expectRefusals([
        ["no token", () => server.gql(SET_STATUS, { id: sub, status: "SUSPENDED", reason: "r" }), "UNAUTHENTICATED"],
        ["not an admin", set({ id: sub, status: "SUSPENDED", reason: "r" }, owner), "FORBIDDEN"],
        ["owner of it, not an admin", set({ id: sub, status: "ACTIVE", reason: "r" }, owner), "FORBIDDEN"],
        ["blank reason", set({ id: sub, status: "SUSPENDED", reason: " \n " }), "BAD_USER_INPUT", /reason is required/],
        ["reason too long", set({ id: sub, status: "SUSPENDED", reason: "r".repeat(1001) }), "BAD_USER_INPUT", /reason/],
        ["unknown status", set({ id: sub, status: "PAUSED", reason: "r" }), "BAD_USER_INPUT"],
        ["malformed id", set({ id: "not-a-uuid", status: "SUSPENDED", reason: "r" }), "NOT_FOUND"],
        ["unknown id", set({ id: UNKNOWN_ID, status: "SUSPENDED", reason: "r" }), "NOT_FOUND"],
      ]);
    });
  });

  // ── grantCredits ────────────────────────────────────────────────────────────────────────────

  describe("grantCredits", () => {
    it("adds credits and records a GRANT with the admin, the reason and the request id", async () => {
      const sub = await fundedSubscription(database, OWNER, { ai: 10 });
      const res = await asAdmin(GRANT, { input: { subscriptionId: sub, type: "ai", amount: 15, reason: "  goodwill  " } }, "req-grant-1");
      expect(res.status).toBe(200);
      expect(res.body.errors).toBeUndefined();
      const entry = res.body.data.grantCredits;
      expect(entry).toMatchObject({
        subscriptionId: sub,
        type: "ai",
        kind: "GRANT",
        amount: 15,
        balanceAfter: 25,
        operation: null,
        estimated: null,
        actorId: ADMIN,
        adminOverride: false,
        reason: "goodwill",
        refundOf: null,
        requestId: "req-grant-1",
      });
      expect(Number.isNaN(Date.parse(entry.createdAt))).toBe(false);
      expect(await balanceOf(sub, "ai")).toBe(25);
      expect(await ledgerRow(entry.id)).toMatchObject({ kind: "GRANT", amount: 15, actor_id: ADMIN, request_id: "req-grant-1" });
    });

    it("grants to a suspended subscription too (admins fix any balance)", async () => {
      const sub = await fundedSubscription(database, OWNER, {});
      await asAdmin(SET_STATUS, { id: sub, status: "SUSPENDED", reason: "review" });
      const res = await asAdmin(GRANT, { input: { subscriptionId: sub, type: "skiptrace", amount: 1, reason: "r" } });
      expect(res.body.data.grantCredits.balanceAfter).toBe(1);
    });

    it("refuses non-admins and bad input, and moves no balance", async () => {
      const sub = await fundedSubscription(database, OWNER, { ai: 10 });
      const grant = (input: Record<string, unknown>, token = admin) => () =>
        server.gql(GRANT, { input: { subscriptionId: sub, type: "ai", amount: 5, reason: "r", ...input } }, { token });
      await expectRefusals([
        ["no token", () => server.gql(GRANT, { input: { subscriptionId: sub, type: "ai", amount: 5, reason: "r" } }), "UNAUTHENTICATED"],
        ["not an admin", grant({}, owner), "FORBIDDEN", /admin/i],
        ["zero", grant({ amount: 0 }), "BAD_USER_INPUT", /positive/],
        ["negative", grant({ amount: -5 }), "BAD_USER_INPUT", /positive/],
        ["beyond int32", grant({ amount: MAX_INT + 1 }), "BAD_USER_INPUT"],
        ["not an integer", grant({ amount: 1.5 }), "BAD_USER_INPUT"],
        ["unknown type", grant({ type: "gold" }), "BAD_USER_INPUT", /Unknown credit type/],
        ["empty reason", grant({ reason: "" }), "BAD_USER_INPUT", /reason/],
        ["blank reason", grant({ reason: "   " }), "BAD_USER_INPUT", /reason/],
        ["malformed id", grant({ subscriptionId: "123" }), "NOT_FOUND", /Subscription 123 does not exist/],
        ["empty id", grant({ subscriptionId: "" }), "NOT_FOUND", /^Subscription "" does not exist$/],
        ["blank id", grant({ subscriptionId: " " }), "NOT_FOUND", /^Subscription " " does not exist$/],
        ["unknown id", grant({ subscriptionId: UNKNOWN_ID }), "NOT_FOUND"],
        ["balance overflow", grant({ amount: MAX_INT }), "BAD_USER_INPUT", /largest balance/],
      ]);
    });
  });

  // ── adjustCredits ───────────────────────────────────────────────────────────────────────────

  describe("adjustCredits", () => {
    it("corrects a balance up and down, to exactly zero, with ADJUSTMENT entries", async () => {
      const sub = await fundedSubscription(database, OWNER, { leads: 10 });
      const up = await asAdmin(ADJUST, { input: { subscriptionId: sub, type: "leads", delta: 3, reason: "missed grant" } }, "req-adj-1");
      expect(up.body.errors).toBeUndefined();
      expect(up.body.data.adjustCredits).toMatchObject({
        kind: "ADJUSTMENT",
        amount: 3,
        balanceAfter: 13,
        actorId: ADMIN,
        reason: "missed grant",
        requestId: "req-adj-1",
      });
      const down = await asAdmin(ADJUST, { input: { subscriptionId: sub, type: "leads", delta: -4, reason: "double grant" } }, "req-adj-2");
      expect(down.body.errors).toBeUndefined();
      expect(down.body.data.adjustCredits).toMatchObject({ kind: "ADJUSTMENT", amount: -4, balanceAfter: 9, requestId: "req-adj-2" });
      const zero = await asAdmin(ADJUST, { input: { subscriptionId: sub, type: "leads", delta: -9, reason: "closing" } });
      expect(zero.body.data.adjustCredits.balanceAfter).toBe(0);
      expect(await balanceOf(sub, "leads")).toBe(0);
    });

    it("refuses going below zero, zero deltas, non-admins and bad input, and moves no balance", async () => {
      const sub = await fundedSubscription(database, OWNER, { leads: 3 });
      const adjust = (input: Record<string, unknown>, token = admin) => () =>
        server.gql(ADJUST, { input: { subscriptionId: sub, type: "leads", delta: -1, reason: "r", ...input } }, { token });
      await expectRefusals([
        ["no token", () => server.gql(ADJUST, { input: { subscriptionId: sub, type: "leads", delta: 1, reason: "r" } }), "UNAUTHENTICATED"],
        ["not an admin", adjust({}, owner), "FORBIDDEN"],
        ["below zero", adjust({ delta: -4 }), "BAD_USER_INPUT", /would take the leads balance below zero/],
        ["far below zero", adjust({ delta: -MAX_INT - 1 }), "BAD_USER_INPUT", /below zero/],
        ["zero delta", adjust({ delta: 0 }), "BAD_USER_INPUT", /other than 0/],
        ["beyond int32", adjust({ delta: MAX_INT + 1 }), "BAD_USER_INPUT"],
        ["balance overflow", adjust({ delta: MAX_INT }), "BAD_USER_INPUT", /largest balance/],
        ["unknown type", adjust({ type: "LEADS" }), "BAD_USER_INPUT", /Unknown credit type/],
        ["blank reason", adjust({ reason: "\t" }), "BAD_USER_INPUT", /reason/],
        ["malformed id", adjust({ subscriptionId: "'; drop table credit_ledger; --" }), "NOT_FOUND"],
        ["unknown id", adjust({ subscriptionId: UNKNOWN_ID }), "NOT_FOUND"],
      ]);
      expect(await balanceOf(sub, "leads")).toBe(3);
    });
  });

  // ── refundCharge ────────────────────────────────────────────────────────────────────────────

  describe("refundCharge", () => {
    it("refunds part of a debit, then the rest, then refuses: the refunds never exceed the debit", async () => {
      const sub = await fundedSubscription(database, OWNER, { leads: 20 });
      const debit = await chargedDebit(sub, 5);
      expect(await balanceOf(sub, "leads")).toBe(15);

      const part = await asAdmin(REFUND, { input: { entryId: debit, amount: 2, reason: "slow results" } }, "req-refund-1");
      expect(part.body.errors).toBeUndefined();
      expect(part.body.data.refundCharge).toMatchObject({
        subscriptionId: sub,
        type: "leads",
        kind: "REFUND",
        amount: 2,
        balanceAfter: 17,
        operation: "Mutation.searchLeads",
        actorId: ADMIN,
        adminOverride: false,
        reason: "slow results",
        refundOf: debit,
        requestId: "req-refund-1",
      });

      const over = await asAdmin(REFUND, { input: { entryId: debit, amount: 4, reason: "r" } });
      expectError(over, "BAD_USER_INPUT", new RegExp(`Debit ${debit} has only 3 credits left to refund`));

      const allButOne = await asAdmin(REFUND, { input: { entryId: debit, amount: 2, reason: "most of the rest" } });
      expect(allButOne.body.errors).toBeUndefined();
      const overByOne = await asAdmin(REFUND, { input: { entryId: debit, amount: 2, reason: "r" } });
      expectError(overByOne, "BAD_USER_INPUT", new RegExp(`Debit ${debit} has only 1 credit left to refund`));

      const rest = await asAdmin(REFUND, { input: { entryId: debit, reason: "the rest" } });
      expect(rest.body.errors).toBeUndefined();
      expect(rest.body.data.refundCharge).toMatchObject({ amount: 1, balanceAfter: 20, refundOf: debit });

      const again = await asAdmin(REFUND, { input: { entryId: debit, reason: "once more" } });
      expectError(again, "BAD_USER_INPUT", /nothing left to refund/);
      const oneMore = await asAdmin(REFUND, { input: { entryId: debit, amount: 1, reason: "once more" } });
      expectError(oneMore, "BAD_USER_INPUT", /nothing left to refund/);
      expect(await balanceOf(sub, "leads")).toBe(20);
    });

    it("refuses non-admins, non-debits, pending debits and bad input, and moves no balance", async () => {
      const sub = await fundedSubscription(database, OWNER, { leads: 20 });
      const debit = await chargedDebit(sub, 5);
      const [grant] = await queryRows<{ id: string }>(
        database.db,
        sql`select id from credit_ledger where subscription_id = ${sub}::uuid and kind = 'GRANT'`,
      );
      // A debit whose resolver is still running: written by the charge path's own statement, not settled.
      const pending = await holdOne(database.db, {
        subscriptionId: sub,
        creditType: "leads",
        amount: 2,
        operation: "Mutation.searchLeads",
        estimated: 2,
        actorId: OWNER,
        adminOverride: false,
        requestId: "still-running",
      });
      if (!pending.ok) throw new Error("the pending debit failed");

      const refund = (input: Record<string, unknown>, token = admin) => () =>
        server.gql(REFUND, { input: { entryId: debit, reason: "r", ...input } }, { token });
      await expectRefusals([
        ["no token", () => server.gql(REFUND, { input: { entryId: debit, reason: "r" } }), "UNAUTHENTICATED"],
        ["not an admin", refund({}, owner), "FORBIDDEN", /admin/i],
        ["more than the debit", refund({ amount: 6 }), "BAD_USER_INPUT", /has only 5 credits left to refund/],
        ["zero", refund({ amount: 0 }), "BAD_USER_INPUT", /positive/],
        ["negative", refund({ amount: -1 }), "BAD_USER_INPUT", /positive/],
        ["beyond int32", refund({ amount: MAX_INT + 1 }), "BAD_USER_INPUT"],
        ["blank reason", refund({ reason: " " }), "BAD_USER_INPUT", /reason/],
        ["a GRANT entry", refund({ entryId: grant.id }), "BAD_USER_INPUT", /is a GRANT, not a DEBIT/],
        ["malformed id", refund({ entryId: "debit-1" }), "NOT_FOUND", /Ledger entry debit-1 does not exist/],
        ["unknown id", refund({ entryId: UNKNOWN_ID }), "NOT_FOUND"],
        ["still pending", refund({ entryId: pending.entryId }), "CONFLICT", /still being processed/],
      ]);
    });

    it("refuses to refund a REFUND or an ADJUSTMENT entry, naming its kind", async () => {
      const sub = await fundedSubscription(database, OWNER, { leads: 20 });
      const debit = await chargedDebit(sub, 4);
      const refund = await asAdmin(REFUND, { input: { entryId: debit, amount: 1, reason: "r" } });
      const refundId = refund.body.data.refundCharge.id;
      const adjustment = await asAdmin(ADJUST, { input: { subscriptionId: sub, type: "leads", delta: -1, reason: "r" } });
      const adjustmentId = adjustment.body.data.adjustCredits.id;
      await expectRefusals([
        ["a REFUND entry", () => asAdmin(REFUND, { input: { entryId: refundId, reason: "r" } }), "BAD_USER_INPUT", /is a REFUND, not a DEBIT/],
        ["an ADJUSTMENT entry", () => asAdmin(REFUND, { input: { entryId: adjustmentId, reason: "r" } }), "BAD_USER_INPUT", /is an ADJUSTMENT, not a DEBIT/],
      ]);
    });

    it("answers BAD_USER_INPUT, not a 500, when the refund would overflow the balance", async () => {
      const sub = await fundedSubscription(database, OWNER, { leads: 10 });
      const debit = await chargedDebit(sub, 5);
      const fill = await asAdmin(GRANT, { input: { subscriptionId: sub, type: "leads", amount: MAX_INT - 5, reason: "fill up" } });
      expect(fill.body.data.grantCredits.balanceAfter).toBe(MAX_INT);
      await expectRefusals([
        ["overflow", () => asAdmin(REFUND, { input: { entryId: debit, reason: "r" } }), "BAD_USER_INPUT", /largest balance/],
      ]);
    });
  });

  // ── admin creditAmount on metered mutations ─────────────────────────────────────────────────

  describe("admin creditAmount override", () => {
    it("charges exactly the admin's amount and records the estimate and the override", async () => {
      const sub = await fundedSubscription(database, OWNER, { leads: 50 });
      const res = await server.gql(SEARCH_LEADS, { sub, limit: 5, creditAmount: 12 }, { token: admin, headers: { "x-request-id": "req-ovr-1" } });
      expect(res.body.errors).toBeUndefined();
      const [charge] = res.body.extensions!.credits.charges;
      expect(charge).toMatchObject({ estimated: 5, charged: 12, adminOverride: true, remaining: 38, refunded: 0 });
      expect(res.body.extensions!.credits.remaining[sub].leads).toBe(38);
      expect(await balanceOf(sub, "leads")).toBe(38);
      expect(await ledgerRow(charge.entryId)).toMatchObject({
        kind: "DEBIT",
        amount: -12,
        estimated: 5,
        admin_override: true,
        actor_id: ADMIN,
        request_id: "req-ovr-1",
        operation: "Mutation.searchLeads",
      });
    });

    it("allows 0 and records it as a zero DEBIT with the estimator's value", async () => {
      const sub = await fundedSubscription(database, OWNER, { leads: 50 });
      const res = await server.gql(SEARCH_LEADS, { sub, limit: 7, creditAmount: 0 }, { token: admin });
      expect(res.body.errors).toBeUndefined();
      const [charge] = res.body.extensions!.credits.charges;
      expect(charge).toMatchObject({ estimated: 7, charged: 0, adminOverride: true, remaining: 50 });
      expect(await balanceOf(sub, "leads")).toBe(50);
      expect(await ledgerRow(charge.entryId)).toMatchObject({ kind: "DEBIT", amount: 0, estimated: 7, admin_override: true, actor_id: ADMIN });
    });

    it("an override larger than the balance is INSUFFICIENT_CREDITS and charges nothing", async () => {
      const sub = await fundedSubscription(database, OWNER, { leads: 5 });
      await expectRefusals([
        ["too much", () => server.gql(SEARCH_LEADS, { sub, limit: 1, creditAmount: 6 }, { token: admin }), "INSUFFICIENT_CREDITS", /needs 6, 5 available/],
      ]);
    });

    it("refuses creditAmount from a non-admin (FORBIDDEN) and a negative one (BAD_USER_INPUT), charging nothing", async () => {
      const sub = await fundedSubscription(database, OWNER, { leads: 50 });
      const search = (creditAmount: number, token: string) => () => server.gql(SEARCH_LEADS, { sub, limit: 5, creditAmount }, { token });
      await expectRefusals([
        ["owner sets creditAmount", search(1, owner), "FORBIDDEN", /creditAmount is for admins only/],
        ["owner sets creditAmount 0", search(0, owner), "FORBIDDEN", /creditAmount/],
        ["admin negative", search(-1, admin), "BAD_USER_INPUT", /creditAmount/],
        ["owner negative", search(-1, owner), "BAD_USER_INPUT", /creditAmount/],
      ]);
      // Without creditAmount the owner is charged the estimate.
      const res = await server.gql(SEARCH_LEADS, { sub, limit: 5 }, { token: owner });
      expect(res.body.extensions!.credits.charges[0]).toMatchObject({ estimated: 5, charged: 5, adminOverride: false });
    });
  });

  // ── ledgerAudit ─────────────────────────────────────────────────────────────────────────────

  describe("ledgerAudit", () => {
    it("is admin only", async () => {
      expectError(await server.gql(AUDIT, {}, { token: owner }), "FORBIDDEN", /admin/i);
      expectError(await server.gql(AUDIT), "UNAUTHENTICATED");
    });

    it("finds every balance equal to its ledger after all the operations above", async () => {
      const res = await asAdmin(AUDIT);
      expect(res.body.errors).toBeUndefined();
      const [{ n }] = await queryRows<{ n: number | string }>(database.db, sql`select count(*) as n from credit_balances`);
      expect(res.body.data.ledgerAudit).toEqual({ checkedBalances: Number(n), ok: true, mismatches: [] });
    });

    it("finds a mismatch planted directly in the database", async () => {
      const sub = await fundedSubscription(database, OWNER, { skiptrace: 8 });
      await database.db.execute(
        sql`update credit_balances set balance = balance + 5 where subscription_id = ${sub}::uuid and credit_type = 'skiptrace'`,
      );
      try {
        const res = await asAdmin(AUDIT);
        expect(res.body.data.ledgerAudit.ok).toBe(false);
        expect(res.body.data.ledgerAudit.mismatches).toEqual([{ subscriptionId: sub, type: "skiptrace", balance: 13, ledgerSum: 8 }]);
      } finally {
        await database.db.execute(
          sql`update credit_balances set balance = balance - 5 where subscription_id = ${sub}::uuid and credit_type = 'skiptrace'`,
        );
      }
      expect((await asAdmin(AUDIT)).body.data.ledgerAudit.ok).toBe(true);
    });

    // An outside audit: a planted ledger sum past Int's range failed the whole answer (500, data
    // null), so the audit lost the very mismatch it exists to report.
    it("reports a ledger sum beyond Int's range at the range's end, not a 500", async () => {
      const sub = await fundedSubscription(database, OWNER, { skiptrace: 8 });
      const plant = sql`insert into credit_ledger (subscription_id, credit_type, kind, amount, balance_after, reason)
                        values (${sub}::uuid, 'skiptrace', 'GRANT', 2147483647, 2147483647, 'planted by the test')`;
      await database.db.execute(plant);
      await database.db.execute(plant);
      try {
        const res = await asAdmin(AUDIT);
        expect(res.body.errors).toBeUndefined();
        expect(res.body.data.ledgerAudit.ok).toBe(false);
        expect(res.body.data.ledgerAudit.mismatches).toEqual([{ subscriptionId: sub, type: "skiptrace", balance: 8, ledgerSum: 2147483647 }]);
      } finally {
        // The ledger refuses deletes; a replica session skips its triggers, as an operator's repair would.
        await database.db.transaction(async (tx) => {
          await tx.execute(sql`set local session_replication_role = replica`);
          await tx.execute(sql`delete from credit_ledger where subscription_id = ${sub}::uuid and reason = 'planted by the test'`);
          // …and the grants the ledger's trigger opened for the planted GRANT entries.
          await tx.execute(sql`delete from credit_grants where subscription_id = ${sub}::uuid and amount = 2147483647`);
        });
      }
      expect((await asAdmin(AUDIT)).body.data.ledgerAudit.ok).toBe(true);
    });
  });
});
