/**
 * creditLedger over HTTP: newest first, opaque cursors, pages that neither repeat nor skip an entry
 * while new entries are written between them, filters, bounds and permissions.
 */
import { sql } from "drizzle-orm";
import { holdOne, postHold, voidHold } from "../helpers/ledger-commands.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../../src/db/database.js";
import { changeBalance } from "../../src/ledger/change-balance.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { adminToken, fundedSubscription, startTestServer, userToken, type TestServer } from "../helpers/test-app.js";
import { sendTyped } from "../helpers/typed-gql.js";
import { CreditLedgerDocument, type CreditLedgerQueryVariables } from "../generated/graphql.js";

const OWNER = "ledger-owner";

describe.each(BACKENDS)("creditLedger on %s", (backend) => {
  let database: TestDatabase;
  let server: TestServer;
  let subscriptionId: string;
  let owner: string;
  let written = 0;

  /** One more entry: alternately a leads grant and a settled 1-credit ai debit. */
  async function writeEntry(): Promise<void> {
    written++;
    if (written % 2 === 0) {
      await changeBalance(database.db, { subscriptionId, creditType: "leads", kind: "GRANT", delta: 1, actorId: "admin-1", reason: `grant ${written}`, requestId: null });
      return;
    }
    const debit = await holdOne(database.db, {
      subscriptionId,
      creditType: "ai",
      amount: 1,
      operation: "Mutation.runAiTask",
      estimated: 1,
      actorId: OWNER,
      adminOverride: false,
      requestId: `req-${written}`,
    });
    if (!debit.ok) throw new Error("debit refused");
    await postHold(database.db, subscriptionId, debit.entryId);
  }

  /** Ids in the ledger's own order, newest first, straight from the table. */
  async function idsInTable(): Promise<string[]> {
    const rows = await queryRows<{ id: string }>(
      database.db,
      sql`select id from credit_ledger where subscription_id = ${subscriptionId}::uuid order by seq desc`,
    );
    return rows.map((r) => r.id);
  }

  const page = async (variables: Omit<CreditLedgerQueryVariables, "subscriptionId">, token = owner, id = subscriptionId) =>
    sendTyped(server, CreditLedgerDocument, { subscriptionId: id, ...variables }, { token });

  beforeAll(async () => {
    database = await createTestDatabase(backend);
    server = await startTestServer({ database });
    subscriptionId = await fundedSubscription(database, OWNER, { ai: 1_000 });
    owner = await userToken(OWNER);
    for (let i = 0; i < 30; i++) await writeEntry();
  });
  afterAll(async () => {
    await server?.close();
    await database?.dispose();
  });

  it("pages newest first with no duplicate and no gap while entries are written between pages", async () => {
    const before = await idsInTable();
    expect(before).toHaveLength(31);
    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    for (;;) {
      const response = await page({ first: 7, after });
      expect(response.body.errors).toBeUndefined();
      const connection = response.body.data!.creditLedger;
      seen.push(...connection.edges.map((e) => e.node.id));
      pages++;
      // Cursors are opaque and each names its own edge; the page ends at its last one.
      expect(connection.pageInfo.endCursor).toBe(connection.edges.at(-1)?.cursor ?? null);
      expect(new Set(connection.edges.map((e) => e.cursor)).size).toBe(connection.edges.length);
      if (!connection.pageInfo.hasNextPage) break;
      after = connection.pageInfo.endCursor;
      // New entries arrive between pages: they are newer than every page still to come.
      for (let i = 0; i < 3; i++) await writeEntry();
    }
    expect(pages).toBe(5);
    expect(seen).toEqual(before);

    // A fresh first page shows the new entries on top, newest first.
    const now = await idsInTable();
    expect(now).toHaveLength(31 + 4 * 3);
    const first = await page({ first: 12 });
    expect(first.body.data!.creditLedger.edges.map((e) => e.node.id)).toEqual(now.slice(0, 12));
    const times = first.body.data!.creditLedger.edges.map((e) => Date.parse(e.node.createdAt));
    expect([...times].sort((x, y) => y - x)).toEqual(times);
  });

  it("shows each entry as the ledger recorded it", async () => {
    const response = await page({ first: 50, filter: { kinds: ["DEBIT"] } });
    const [latest] = response.body.data!.creditLedger.edges;
    expect(latest.node).toMatchObject({
      subscriptionId,
      type: "ai",
      kind: "DEBIT",
      amount: -1,
      operation: "Mutation.runAiTask",
      estimated: 1,
      actorId: OWNER,
      adminOverride: false,
      reason: null,
      refundOf: null,
      requestId: expect.stringMatching(/^req-/),
    });
    expect(latest.node.balanceAfter).toBeGreaterThanOrEqual(0);
  });

  it("first defaults to 50 and may be at most 1,000", async () => {
    const all = await idsInTable();
    const byDefault = (await page({})).body.data!.creditLedger;
    expect(byDefault.edges).toHaveLength(Math.min(50, all.length));
    expect(byDefault.pageInfo.hasNextPage).toBe(all.length > 50);
    const most = (await page({ first: 1_000 })).body.data!.creditLedger;
    expect(most.edges.map((e) => e.node.id)).toEqual(all);
    expect(most.pageInfo.hasNextPage).toBe(false);
    for (const first of [0, -1, 1_001]) {
      const response = await page({ first });
      expect([response.status, response.body.errors?.[0]?.extensions.code, response.body.errors?.[0]?.message]).toEqual([
        400,
        "BAD_USER_INPUT",
        `first must be between 1 and 1,000, got ${first}`,
      ]);
    }
  });

  it("refuses a cursor it did not make", async () => {
    const real = (await page({ first: 1 })).body.data!.creditLedger.pageInfo.endCursor!;
    const b64 = (text: string) => Buffer.from(text).toString("base64url");
    for (const after of ["", "not a cursor!", b64("abc"), b64("0"), b64("-5"), b64("99999999999999999999"), `${real}=`, Buffer.from(Buffer.from(real, "base64url").toString()).toString("base64")]) {
      if (after === real) continue;
      const response = await page({ after });
      expect([response.status, response.body.errors?.[0]?.extensions.code, response.body.errors?.[0]?.extensions.field], after).toEqual([
        400,
        "BAD_USER_INPUT",
        "after",
      ]);
    }
  });

  it("refuses another listing's cursor: an alerts cursor is not a ledger position, nor the other way round", async () => {
    // An outside reports audit: an alerts endCursor passed to creditLedger silently listed the
    // ledger from an unrelated point (both were the text of a row number).
    const admin = await adminToken();
    const alerts = await server.gql(`{ creditAlerts(first: 1) { pageInfo { endCursor } } }`, {}, { token: admin });
    const alertCursor = alerts.body.data.creditAlerts.pageInfo.endCursor as string | null;
    const ledgerCursor = (await page({ first: 1 })).body.data!.creditLedger.pageInfo.endCursor!;
    if (alertCursor !== null) {
      const response = await page({ after: alertCursor }, admin);
      expect([response.status, response.body.errors?.[0]?.extensions.code, response.body.errors?.[0]?.extensions.field]).toEqual([400, "BAD_USER_INPUT", "after"]);
    }
    const response = await server.gql(`query ($after: String) { creditAlerts(first: 1, after: $after) { edges { cursor } } }`, { after: ledgerCursor }, { token: admin });
    expect([response.status, response.body.errors?.[0]?.extensions.code, response.body.errors?.[0]?.extensions.field]).toEqual([400, "BAD_USER_INPUT", "after"]);
  });

  it("filters by type, kinds, operation and time (from inclusive, to exclusive)", async () => {
    const edges = async (filter: CreditLedgerQueryVariables["filter"]) => {
      const response = await page({ first: 1_000, filter });
      expect(response.body.errors).toBeUndefined();
      return response.body.data!.creditLedger.edges.map((e) => e.node);
    };
    const all = await edges(null);
    const leads = await edges({ type: "leads" });
    expect(leads.length).toBeGreaterThan(0);
    expect(leads).toEqual(all.filter((n) => n.type === "leads"));
    expect(await edges({ kinds: ["GRANT"] })).toEqual(all.filter((n) => n.kind === "GRANT"));
    expect(await edges({ kinds: ["GRANT", "DEBIT"], type: "ai" })).toEqual(all.filter((n) => n.type === "ai"));
    expect(await edges({ kinds: ["REFUND"] })).toEqual([]);
    expect(await edges({ operation: "Mutation.runAiTask" })).toEqual(all.filter((n) => n.operation === "Mutation.runAiTask"));

    // Back-dated entries (inserts are allowed; the ledger only refuses UPDATE and DELETE) give exact times.
    for (const at of ["2024-05-01T00:00:00Z", "2024-05-01T12:00:00Z", "2024-05-02T00:00:00Z"]) {
      await database.db.execute(sql`
        insert into credit_ledger (subscription_id, credit_type, kind, amount, balance_after, reason, created_at)
        values (${subscriptionId}::uuid, 'skiptrace', 'GRANT', 1, 1, ${at}, ${at}::timestamptz)`);
    }
    const window = await edges({ from: "2024-05-01T00:00:00Z", to: "2024-05-02T00:00:00Z" });
    expect(window.map((n) => n.reason)).toEqual(["2024-05-01T12:00:00Z", "2024-05-01T00:00:00Z"]);
    expect((await edges({ type: "skiptrace", from: "2024-05-01T00:00:00.001Z" })).map((n) => n.reason)).toEqual([
      "2024-05-02T00:00:00Z",
      "2024-05-01T12:00:00Z",
    ]);
  });

  it("refuses bad filters", async () => {
    const bad = [
      { type: "gold" },
      { kinds: [] },
      { from: "2024-05-02T00:00:00Z", to: "2024-05-01T00:00:00Z" },
    ] as CreditLedgerQueryVariables["filter"][];
    for (const filter of bad) {
      const response = await page({ filter });
      expect([response.status, response.body.errors?.[0]?.extensions.code], JSON.stringify(filter)).toEqual([400, "BAD_USER_INPUT"]);
    }
  });

  it("the owner and admins may read it; others may not", async () => {
    const status = async (token: string, id = subscriptionId) => {
      const response = await page({ first: 1 }, token, id);
      return [response.status, response.body.errors?.[0]?.extensions.code ?? "ok"];
    };
    expect(await status(await adminToken())).toEqual([200, "ok"]);
    expect(await status(await userToken("someone-else"))).toEqual([403, "FORBIDDEN"]);
    expect(await status("")).toEqual([401, "UNAUTHENTICATED"]);
    expect(await status(owner, "00000000-0000-4000-8000-000000000000")).toEqual([404, "NOT_FOUND"]);
    expect(await status(owner, "not-a-uuid")).toEqual([404, "NOT_FOUND"]);
  });
});
