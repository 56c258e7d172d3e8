/**
 * creditPreview over HTTP: for every metered mutation and several argument sets, the preview of the
 * mutation's own document equals what running it then charges (extensions.credits); the same for a
 * document with several aliased metered fields, fragments, an inline fragment, @skip and @include.
 * A preview runs nothing and charges nothing, and refuses what the mutation would refuse.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { adminToken, fundedSubscription, startTestServer, userToken, type TestServer } from "../helpers/test-app.js";
import { documentText, sendTyped } from "../helpers/typed-gql.js";
import {
  BundleDocument,
  CreditLedgerDocument,
  CreditPreviewDocument,
  HarvestDomainDocument,
  LookupPhonesDocument,
  RunAiTaskDocument,
  SearchLeadsDocument,
  SearchMlsDocument,
  SkipTraceDocument,
  type CreditPreviewQuery,
} from "../generated/graphql.js";
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";

const OWNER = "preview-owner";
const STRANGER = "preview-stranger";

interface MeteredCase {
  field: string;
  document: TypedDocumentNode<any, any>;
  /** Inputs, each with the price the DESIGN.md table gives for it. */
  inputs: { input: Record<string, unknown>; price: number }[];
}

const record = (i: number) => ({ firstName: `F${i}`, lastName: `L${i}`, address: `${i} Main St` });

const CASES: MeteredCase[] = [
  {
    field: "runAiTask",
    document: RunAiTaskDocument,
    inputs: [
      { input: { prompt: "hello" }, price: 1 }, // ceil((2 + 256) / 1000)
      { input: { prompt: "x".repeat(6_000), maxTokens: 4_000 }, price: 6 }, // ceil((1500 + 4000) / 1000)
      { input: { prompt: "y".repeat(401), model: "LARGE", maxTokens: 8_192 }, price: 45 }, // ceil((101 + 8192) / 1000) × 5
    ],
  },
  {
    field: "searchLeads",
    document: SearchLeadsDocument,
    inputs: [
      { input: { query: "plumbers" }, price: 25 },
      { input: { query: "roofers", location: "Austin", limit: 1 }, price: 1 },
      { input: { query: "dentists", limit: 500 }, price: 500 },
    ],
  },
  {
    field: "searchMls",
    document: SearchMlsDocument,
    inputs: [
      { input: { area: "Austin" }, price: 1 },
      { input: { area: "Dallas", limit: 26 }, price: 2 },
      { input: { area: "Houston", limit: 500, includeHistory: true }, price: 40 },
    ],
  },
  {
    field: "harvestDomain",
    document: HarvestDomainDocument,
    inputs: [
      { input: { domain: "example.com", sources: ["bing"] }, price: 1 },
      { input: { domain: "Example.ORG", sources: ["bing", "crtsh", "otx"], limit: 101 }, price: 6 },
      { input: { domain: "acme.io", sources: ["github", "yahoo"], limit: 1_000 }, price: 20 },
    ],
  },
  {
    field: "skipTrace",
    document: SkipTraceDocument,
    inputs: [
      { input: { records: [record(1)] }, price: 1 },
      { input: { records: Array.from({ length: 17 }, (_, i) => record(i)) }, price: 17 },
    ],
  },
  {
    field: "lookupPhones",
    document: LookupPhonesDocument,
    inputs: [
      { input: { phones: ["+15550100"] }, price: 1 },
      { input: { phones: ["+15550100", "+15550101", "+15550102"], carrierLookup: true }, price: 6 },
      { input: { phones: ["+15550100", "+15550101"], carrierLookup: false }, price: 2 },
    ],
  },
];

describe.each(BACKENDS)("creditPreview on %s", (backend) => {
  let database: TestDatabase;
  let server: TestServer;
  let subscriptionId: string;
  let owner: string;
  let stranger: string;
  let admin: string;

  beforeAll(async () => {
    database = await createTestDatabase(backend);
    // Generous limits: this file runs many metered calls from one caller on purpose.
    server = await startTestServer({ database, env: { RATE_LIMIT_DEFAULT: "100000/1m" } });
    subscriptionId = await fundedSubscription(database, OWNER, { ai: 100_000, leads: 100_000, skiptrace: 100_000 });
    [owner, stranger, admin] = await Promise.all([userToken(OWNER), userToken(STRANGER), adminToken()]);
  });
  afterAll(async () => {
    await server?.close();
    await database?.dispose();
  });

  async function preview(
    document: TypedDocumentNode<any, any>,
    variables: Record<string, unknown>,
    token: string = owner,
    forSubscription = subscriptionId,
  ) {
    return sendTyped(server, CreditPreviewDocument, { input: { subscriptionId: forSubscription, query: documentText(document), variables } }, { token });
  }

  function expectPreview(response: { status: number; body: { data?: CreditPreviewQuery | null; errors?: unknown } }): CreditPreviewQuery["creditPreview"] {
    expect(response.body.errors).toBeUndefined();
    expect(response.status).toBe(200);
    return response.body.data!.creditPreview;
  }

  for (const { field, document, inputs } of CASES) {
    it(`${field}: the preview equals the charge, for every argument set`, async () => {
      for (const { input, price } of inputs) {
        const variables = { subscriptionId, input };
        const previewed = expectPreview(await preview(document, variables));
        expect(previewed.items).toHaveLength(1);
        const [item] = previewed.items;
        expect(item).toMatchObject({ path: [field], operation: `Mutation.${field}`, amount: price, fallback: false });

        const ran = await sendTyped(server, document, variables, { token: owner });
        expect(ran.body.errors).toBeUndefined();
        const [charge] = ran.body.extensions!.credits.charges;
        expect(charge.charged).toBe(item.amount);
        expect({ path: charge.path, operation: charge.operation, type: charge.type, fallback: charge.fallback }).toEqual({
          path: item.path,
          operation: item.operation,
          type: item.type,
          fallback: item.fallback,
        });
      }
    });
  }

  it("an admin's creditAmount is the previewed price and the charge, 0 included", async () => {
    for (const creditAmount of [0, 7]) {
      const variables = { subscriptionId, input: { prompt: "z".repeat(9_000) }, creditAmount };
      const [item] = expectPreview(await preview(RunAiTaskDocument, variables, admin)).items;
      expect(item.amount).toBe(creditAmount);
      const ran = await sendTyped(server, RunAiTaskDocument, variables, { token: admin });
      expect(ran.body.errors).toBeUndefined();
      expect(ran.body.extensions!.credits.charges[0]).toMatchObject({ charged: creditAmount, adminOverride: true });
    }
  });

  it("several aliased fields with a fragment, an inline fragment, @skip and @include: items equal the charges", async () => {
    const prompt = "p".repeat(400); // 100 prompt tokens
    const expectedAll = [
      { path: ["small"], amount: 1 }, // ceil((100 + 900) / 1000)
      { path: ["large"], amount: 15 }, // ceil((100 + 2000) / 1000) × 5
      { path: ["mls"], amount: 6 }, // ceil(60 / 25) × 2
      { path: ["moreLeads"], amount: 7 },
      { path: ["lookupPhones"], amount: 4 }, // 2 phones × 2
    ];
    for (const withLeads of [true, false]) {
      for (const skipPhones of [false, true]) {
        const variables = { subscriptionId, prompt, withLeads, skipPhones };
        const previewed = expectPreview(await preview(BundleDocument, variables));
        const expected = expectedAll.filter(
          (e) => (withLeads || e.path[0] !== "moreLeads") && (!skipPhones || e.path[0] !== "lookupPhones"),
        );
        expect(previewed.items.map(({ path, amount }) => ({ path, amount }))).toEqual(expected);

        const ran = await sendTyped(server, BundleDocument, variables, { token: owner });
        expect(ran.body.errors).toBeUndefined();
        const charges = ran.body.extensions!.credits.charges as { path: string[]; charged: number }[];
        expect(charges.map(({ path, charged }) => ({ path, amount: charged }))).toEqual(
          previewed.items.map(({ path, amount }) => ({ path, amount })),
        );

        const sums = new Map<string, number>();
        for (const item of previewed.items) sums.set(item.type, (sums.get(item.type) ?? 0) + item.amount);
        expect(previewed.totals).toEqual([...sums].sort(([a], [b]) => a.localeCompare(b)).map(([type, amount]) => ({ type, amount })));
      }
    }
  });

  it("a field selected twice under one response key is one item, as it is one charge", async () => {
    const query = `mutation($s: ID!) {
      runAiTask(subscriptionId: $s, input: { prompt: "same" }) { output }
      ...Again
    }
    fragment Again on Mutation { runAiTask(subscriptionId: $s, input: { prompt: "same" }) { model } }`;
    const response = await server.gql<CreditPreviewQuery>(documentText(CreditPreviewDocument), {
      input: { subscriptionId, query, variables: { s: subscriptionId } },
    }, { token: owner });
    const previewed = expectPreview(response);
    expect(previewed.items.map((i) => i.path)).toEqual([["runAiTask"]]);
    const ran = await server.gql(query, { s: subscriptionId }, { token: owner });
    expect(ran.body.extensions!.credits.charges).toHaveLength(1);
    expect(ran.body.extensions!.credits.charges[0].charged).toBe(previewed.items[0].amount);
  });

  it("runs and charges nothing, and reports balances and sufficiency", async () => {
    const small = await fundedSubscription(database, OWNER, { ai: 3, leads: 100 });
    const ledgerBefore = await sendTyped(server, CreditLedgerDocument, { subscriptionId: small }, { token: owner });
    const variables = { subscriptionId: small, input: { prompt: "q".repeat(4_000), maxTokens: 4_000 } }; // 5 credits
    const previewed = expectPreview(await preview(RunAiTaskDocument, variables, owner, small));
    expect(previewed).toMatchObject({
      subscriptionId: small,
      totals: [{ type: "ai", amount: 5 }],
      balances: [{ type: "ai", balance: 3 }],
      sufficient: false,
    });
    const enough = expectPreview(await preview(RunAiTaskDocument, { ...variables, input: { prompt: "q" } }, owner, small));
    expect(enough).toMatchObject({ totals: [{ type: "ai", amount: 1 }], balances: [{ type: "ai", balance: 3 }], sufficient: true });
    const ledgerAfter = await sendTyped(server, CreditLedgerDocument, { subscriptionId: small }, { token: owner });
    expect(ledgerAfter.body.data).toEqual(ledgerBefore.body.data);
    // A preview response carries no charges.
    const response = await preview(RunAiTaskDocument, variables, owner, small);
    expect(response.body.extensions?.credits).toBeUndefined();
    // A document with no metered field costs nothing and is always affordable.
    const nothing = expectPreview(await preview(CreditLedgerDocument, { subscriptionId: small }, owner, small));
    expect(nothing).toMatchObject({ items: [], totals: [], balances: [], sufficient: true });
  });

  describe("refusals", () => {
    const codeOf = (response: { status: number; body: { errors?: { extensions: Record<string, unknown>; message: string }[] } }) => ({
      status: response.status,
      code: response.body.errors?.[0]?.extensions.code,
      message: response.body.errors?.[0]?.message,
    });
    /** Previews any text; an empty token sends no Authorization header. */
    const raw = (query: string, variables: Record<string, unknown> = {}, token: string = owner, operationName?: string) =>
      server.gql(documentText(CreditPreviewDocument), { input: { subscriptionId, query, variables, operationName } }, { token });

    it("needs a token", async () => {
      expect(codeOf(await raw("mutation { __typename }", {}, ""))).toMatchObject({ status: 401, code: "UNAUTHENTICATED" });
    });

    it("another user's subscription is FORBIDDEN, a missing or malformed one NOT_FOUND", async () => {
      const response = await preview(RunAiTaskDocument, { subscriptionId, input: { prompt: "hi" } }, stranger);
      expect(codeOf(response)).toMatchObject({ status: 403, code: "FORBIDDEN" });
      // Even when the document is broken: who may see the subscription is answered first.
      const broken = await server.gql(documentText(CreditPreviewDocument), { input: { subscriptionId, query: "mutation {" } }, {
        token: stranger,
      });
      expect(codeOf(broken)).toMatchObject({ code: "FORBIDDEN" });
      for (const id of ["00000000-0000-4000-8000-000000000000", "not-a-uuid"]) {
        const missing = await preview(RunAiTaskDocument, { subscriptionId: id, input: { prompt: "hi" } }, owner, id);
        expect(codeOf(missing)).toMatchObject({ status: 404, code: "NOT_FOUND" });
      }
    });

    it("a document that does not parse or validate is BAD_USER_INPUT with the reason", async () => {
      expect(codeOf(await raw("mutation {"))).toMatchObject({
        status: 400,
        code: "BAD_USER_INPUT",
        message: expect.stringMatching(/^The document does not parse: Syntax Error/),
      });
      expect(codeOf(await raw("mutation { runAiTask { output } }"))).toMatchObject({
        status: 400,
        code: "BAD_USER_INPUT",
        message: expect.stringMatching(/^The document is not valid: .*Field "runAiTask" argument "subscriptionId" of type "ID!" is required/),
      });
      expect(codeOf(await raw(documentText(RunAiTaskDocument), { subscriptionId }))).toMatchObject({
        code: "BAD_USER_INPUT",
        message: expect.stringMatching(/^The variables do not fit the document: Variable "\$input" of required type "AiTaskInput!" was not provided/),
      });
      const two = `${documentText(SearchLeadsDocument)}\n${documentText(SearchMlsDocument)}`;
      expect(codeOf(await raw(two, { subscriptionId, input: { query: "q", area: "a" } }))).toMatchObject({ code: "BAD_USER_INPUT" });
      const named = await raw(two, { subscriptionId, input: { area: "Austin", limit: 50 } }, owner, "SearchMls");
      expect(named.body.data.creditPreview.items).toMatchObject([{ path: ["searchMls"], amount: 2 }]);
    });

    it("invalid arguments of a metered field: BAD_USER_INPUT with the mutation's own message", async () => {
      const bad: [TypedDocumentNode<any, any>, Record<string, unknown>][] = [
        [RunAiTaskDocument, { prompt: "hi", maxTokens: 0 }],
        [SearchLeadsDocument, { query: "q", limit: 501 }],
        [HarvestDomainDocument, { domain: "not a domain", sources: ["bing", "bing"] }],
        [SkipTraceDocument, { records: [] }],
      ];
      for (const [document, input] of bad) {
        const variables = { subscriptionId, input };
        const previewed = codeOf(await preview(document, variables));
        const ran = codeOf(await sendTyped(server, document, variables, { token: owner }));
        expect(previewed.code).toBe("BAD_USER_INPUT");
        expect(previewed).toEqual(ran);
      }
    });

    it("creditAmount from a non-admin is FORBIDDEN, as the mutation answers", async () => {
      const variables = { subscriptionId, input: { prompt: "hi" }, creditAmount: 1 };
      const previewed = codeOf(await preview(RunAiTaskDocument, variables));
      expect(previewed).toMatchObject({ status: 403, code: "FORBIDDEN" });
      expect(codeOf(await sendTyped(server, RunAiTaskDocument, variables, { token: owner }))).toEqual(previewed);
    });
  });
});
