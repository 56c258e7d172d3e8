/**
 * The page budget end to end (src/graphql/validation/page-budget.ts): one operation asks for at most
 * MAX_PAGE_ITEMS (2,000) list items in all, counted before anything runs. Before it, 50 aliases of
 * `creditLedger(first: 1000)`, within every other limit, were answered: 50,000 entries, a 24 MB
 * response and seconds of a blocked event loop per request, enough for a few customers to take an
 * instance down. Now such an operation is refused with 400 BAD_USER_INPUT, nothing run.
 */
import { parse, buildSchema, type OperationDefinitionNode } from "graphql";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { changeBalance } from "../../src/ledger/change-balance.js";
import { MAX_PAGE_ITEMS, pageBudgetRefusal } from "../../src/graphql/validation/page-budget.js";
import { createPgliteDatabase, type TestDatabase } from "../helpers/databases.js";
import { fundedSubscription, startTestServer, userToken, type TestServer } from "../helpers/test-app.js";

const OWNER = "page-budget-owner";
/** Every field of an entry, as the audit's request selected them. */
const ENTRY = "id subscriptionId type kind amount balanceAfter operation estimated actorId adminOverride reason refundOf requestId createdAt draws { grantId amount }";
const ledgerAliases = (n: number, first: string) =>
  Array.from({ length: n }, (_, i) => `l${i}: creditLedger(subscriptionId: $s, first: ${first}) { edges { node { ${ENTRY} } } }`).join(" ");
const AUDIT_QUERY = `query($s: ID!) { ${ledgerAliases(50, "1000")} }`;
const AUDIT_MESSAGE =
  "The operation asks for 50,000 list items in all (50 creditLedger pages of 1,000); at most 2,000 are answered per request: ask for fewer, or page with `after`.";

describe("the page budget over HTTP", () => {
  let database: TestDatabase;
  let server: TestServer;
  let owner: string;
  let subscriptionId: string;

  beforeAll(async () => {
    database = await createPgliteDatabase();
    server = await startTestServer({ database });
    owner = await userToken(OWNER);
    subscriptionId = await fundedSubscription(database, OWNER, { leads: 10 });
    // More entries than one page holds, so that a page of 1,000 comes back full.
    for (let i = 0; i < 1_050; i++) {
      await changeBalance(database.db, { subscriptionId, creditType: "leads", kind: "GRANT", delta: 1, actorId: "test-setup", reason: `grant ${i}`, requestId: null });
    }
  }, 300_000);
  afterAll(async () => {
    await server?.close();
    await database?.dispose();
  });

  function expectRefused(res: Awaited<ReturnType<TestServer["gql"]>>, message: string | RegExp): void {
    expect(res.status).toBe(400);
    expect(res.body.data).toBeUndefined();
    expect(res.body.errors).toHaveLength(1);
    expect(res.body.errors![0].extensions.code).toBe("BAD_USER_INPUT");
    if (typeof message === "string") expect(res.body.errors![0].message).toBe(message);
    else expect(res.body.errors![0].message).toMatch(message);
  }

  it("refuses the audit's 50 aliases of creditLedger(first: 1000) with 400 BAD_USER_INPUT, saying what to do", async () => {
    const res = await server.gql(AUDIT_QUERY, { s: subscriptionId }, { token: owner });
    expectRefused(res, AUDIT_MESSAGE);
  });

  it("runs nothing of a refused operation: a stranger gets the budget's refusal, not the resolvers' FORBIDDEN", async () => {
    const stranger = await userToken("page-budget-stranger");
    const res = await server.gql(AUDIT_QUERY, { s: subscriptionId }, { token: stranger });
    expectRefused(res, AUDIT_MESSAGE);
  });

  it("is refused by creditPreview too, in the same words (a preview refuses what the request would)", async () => {
    const preview = `query($input: CreditPreviewInput!) { creditPreview(input: $input) { sufficient items { operation amount } } }`;
    const res = await server.gql(preview, { input: { subscriptionId, query: AUDIT_QUERY, variables: { s: subscriptionId } } }, { token: owner });
    expect(res.status).toBe(400);
    expect(res.body.errors).toHaveLength(1);
    expect(res.body.errors![0]).toMatchObject({ message: AUDIT_MESSAGE, extensions: { code: "BAD_USER_INPUT" } });
    const within = await server.gql(preview, { input: { subscriptionId, query: `query($s: ID!) { ${ledgerAliases(2, "1000")} }`, variables: { s: subscriptionId } } }, { token: owner });
    expect(within.status).toBe(200);
    expect(within.body.data.creditPreview).toMatchObject({ sufficient: true, items: [] });
  });

  it("answers two full pages of 1,000: the budget is inclusive", async () => {
    const res = await server.gql(`query($s: ID!) { ${ledgerAliases(2, "1000")} }`, { s: subscriptionId }, { token: owner });
    expect(res.status).toBe(200);
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data.l0.edges).toHaveLength(1_000);
    expect(res.body.data.l1.edges).toHaveLength(1_000);
  });

  it("counts `first` given as a variable, as the resolver gets it", async () => {
    const query = `query($s: ID!, $n: Int) { ${ledgerAliases(3, "$n")} }`;
    const refused = await server.gql(query, { s: subscriptionId, n: 1_000 }, { token: owner });
    expectRefused(
      refused,
      "The operation asks for 3,000 list items in all (3 creditLedger pages of 1,000); at most 2,000 are answered per request: ask for fewer, or page with `after`.",
    );
    const answered = await server.gql(query, { s: subscriptionId, n: 10 }, { token: owner });
    expect(answered.status).toBe(200);
    expect(answered.body.data.l2.edges).toHaveLength(10);
  });

  it("counts the default page (50) of a paged field whose `first` is left out, or a variable left out", async () => {
    const leftOut = await server.gql(`query($s: ID!) { ${ledgerAliases(41, "$n").replaceAll(", first: $n", "")} }`, { s: subscriptionId }, { token: owner });
    expectRefused(leftOut, /^The operation asks for 2,050 list items in all \(41 creditLedger pages of 50\)/);
    const variableLeftOut = await server.gql(`query Forty($s: ID!, $n: Int) { ${ledgerAliases(40, "$n")} }`, { s: subscriptionId }, { token: owner });
    expect(variableLeftOut.status).toBe(200);
    expect(variableLeftOut.body.data.l39.edges).toHaveLength(50);
  });

  it("counts a fragment's pages where it is spread, inline fragments too, and every paged field together", async () => {
    const page = (alias: string, first: number) => `${alias}: creditLedger(subscriptionId: $s, first: ${first}) { edges { node { id } } }`;
    const query =
      `query Spread($s: ID!) { ...Pages ... on Query { ${page("c", 500)} } alerts: creditAlerts(subscriptionId: $s, first: 200) { edges { node { id } } } } ` +
      `fragment Pages on Query { ${page("a", 700)} ${page("b", 700)} }`;
    const res = await server.gql(query, { s: subscriptionId }, { token: owner });
    expectRefused(
      res,
      "Operation Spread asks for 2,100 list items in all (2 creditLedger pages of 700, 1 creditLedger page of 500, 1 creditAlerts page of 200); at most 2,000 are answered per request: ask for fewer, or page with `after`.",
    );
    // The same fragment alone is answered.
    const alone = await server.gql(`query($s: ID!) { ...Pages } fragment Pages on Query { ${page("a", 700)} ${page("b", 700)} }`, { s: subscriptionId }, { token: owner });
    expect(alone.status).toBe(200);
    expect(alone.body.data.a.edges).toHaveLength(700);
  });

  it("leaves a `first` out of bounds to the resolver's own refusal", async () => {
    const res = await server.gql(`query($s: ID!) { creditLedger(subscriptionId: $s, first: 5000) { edges { node { id } } } }`, { s: subscriptionId }, { token: owner });
    expect(res.body.errors![0]).toMatchObject({ message: "first must be between 1 and 1,000, got 5000", extensions: { code: "BAD_USER_INPUT" } });
  });
});

describe("the page budget's count of pages inside pages", () => {
  // This API has no paged field inside another (every one is on Query); the count is shown on a schema that does.
  const schema = buildSchema(`
    type Query { outer(first: Int): OuterPage! }
    type OuterPage { edges: [OuterEdge!]! }
    type OuterEdge { node: Outer! }
    type Outer { id: ID! inner(first: Int): InnerPage! }
    type InnerPage { edges: [InnerEdge!]! }
    type InnerEdge { node: Inner! }
    type Inner { id: ID! }
  `);
  const refusal = (query: string, variables: Record<string, unknown> = {}) => {
    const document = parse(query);
    return pageBudgetRefusal(schema, document, document.definitions[0] as OperationDefinitionNode, variables);
  };

  it("multiplies an inner page by the outer page's size", () => {
    expect(refusal(`query($n: Int) { outer(first: $n) { edges { node { inner(first: 50) { edges { node { id } } } } } } }`, { n: 40 })).toBe(
      "The operation asks for 2,040 list items in all (40 inner pages of 50, 1 outer page of 40); at most 2,000 are answered per request: ask for fewer, or page with `after`.",
    );
    expect(refusal(`{ outer(first: 39) { edges { node { inner(first: 50) { edges { node { id } } } } } } }`)).toBeUndefined();
    expect(MAX_PAGE_ITEMS).toBe(2_000);
  });
});
