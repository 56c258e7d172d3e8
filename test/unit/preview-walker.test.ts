/**
 * The preview's field walker against graphql-js itself: each document is executed on a small schema
 * whose metered fields record the call graphql-js makes (response path and arguments, priced with the
 * same code as the charge wrapper), and the preview of the same document and variables must list
 * exactly those calls, in the same order, at the same price.
 */
import { buildSchema, execute, parse, type GraphQLSchema } from "graphql";
import { describe, expect, it } from "vitest";
import { CREDITS_DIRECTIVE_SDL, creditsDirectiveTransformer, readMeteredFields } from "../../src/credits/credits-directive.js";
import { CREDIT_TYPE_NAMES } from "../../src/credits/credit-types.js";
import { ESTIMATORS } from "../../src/credits/estimators/registry.js";
import { METERS } from "../../src/credits/meters/registry.js";
import type { MeteredField } from "../../src/credits/metered-field.js";
import { priceMeteredCall, validateMeteredArgs } from "../../src/credits/pricing.js";
import { priceDocument, totalsByType } from "../../src/credits/preview/price-document.js";
import { MAX_WALKED_SELECTIONS } from "../../src/credits/preview/field-walker.js";
import { responsePath } from "../../src/graphql/context.js";

const SDL = `
  ${CREDITS_DIRECTIVE_SDL}
  enum AiModel { SMALL LARGE }
  input AiTaskInput { prompt: String!, model: AiModel = SMALL, maxTokens: Int = 256 }
  input LeadSearchInput { query: String!, location: String, limit: Int = 25 }
  type Query { ping: Int }
  type Box {
    label: String
    inner: Box
    searchLeads(subscriptionId: ID!, input: LeadSearchInput!): Int @credits(type: "leads", estimator: "leads")
  }
  type Mutation {
    runAiTask(subscriptionId: ID!, input: AiTaskInput!, creditAmount: Int): Int @credits(type: "ai", estimator: "ai")
    searchLeads(subscriptionId: ID!, input: LeadSearchInput!, creditAmount: Int): Int @credits(type: "leads", estimator: "leads")
    flat(subscriptionId: ID!): Int @credits(type: "skiptrace", amount: 2)
    box: Box
    free(n: Int): Int
  }
`;

interface Call {
  path: (string | number)[];
  operation: string;
  amount: number;
}

const options = { creditTypes: CREDIT_TYPE_NAMES, estimators: ESTIMATORS, meters: METERS };
const baseSchema = buildSchema(SDL);
const meteredFields: MeteredField[] = readMeteredFields(baseSchema, options);
let recorded: Call[] = [];
const schema: GraphQLSchema = creditsDirectiveTransformer({
  ...options,
  wrap: (field) => (_source, args, _ctx, info) => {
    const valid = validateMeteredArgs(field, args as Record<string, unknown>);
    const price = priceMeteredCall(field, valid, (args as { creditAmount?: number | null }).creditAmount);
    recorded.push({ path: responsePath(info), operation: field.coordinate, amount: price.charged });
    return 0;
  },
})(baseSchema);

const rootValue = { box: () => ({ label: "box" }), free: () => 1 };

async function executed(query: string, variables: Record<string, unknown>, operationName?: string): Promise<Call[]> {
  recorded = [];
  const result = await execute({ schema, document: parse(query), variableValues: variables, operationName, rootValue });
  expect(result.errors ?? []).toEqual([]);
  return recorded;
}

function previewed(query: string, variables: Record<string, unknown>, operationName?: string): Call[] {
  return priceDocument(schema, meteredFields, { query, variables, operationName, callerIsAdmin: true }).map((item) => ({
    path: item.path,
    operation: item.operation,
    amount: item.amount,
  }));
}

/** Every combination of the named boolean variables. */
function combinations(names: string[]): Record<string, boolean>[] {
  return Array.from({ length: 2 ** names.length }, (_, bits) =>
    Object.fromEntries(names.map((name, i) => [name, Boolean(bits & (1 << i))])),
  );
}

const SUB = "00000000-0000-4000-8000-000000000001";

const DOCUMENTS: { name: string; query: string; flags: string[]; variables?: Record<string, unknown> }[] = [
  {
    name: "aliases of one field with different arguments",
    query: `mutation($s: ID!) {
      a: runAiTask(subscriptionId: $s, input: { prompt: "hello", maxTokens: 1500 })
      b: runAiTask(subscriptionId: $s, input: { prompt: "hello", model: LARGE })
      runAiTask(subscriptionId: $s, input: { prompt: "hello" })
      free(n: 1)
    }`,
    flags: [],
  },
  {
    name: "fragments, inline fragments, @skip and @include, nested",
    query: `mutation M($s: ID!, $x: Boolean!, $y: Boolean!, $z: Boolean!, $limit: Int) {
      ...Leads @include(if: $x)
      ... on Mutation @skip(if: $y) {
        flat(subscriptionId: $s)
        deep: searchLeads(subscriptionId: $s, input: { query: "q", limit: $limit })
      }
      ... {
        box @include(if: $z) {
          label
          searchLeads(subscriptionId: $s, input: { query: "nested", limit: 9 })
          ... on Box @skip(if: $x) { again: searchLeads(subscriptionId: $s, input: { query: "n", limit: 4 }) }
        }
      }
      tail: flat(subscriptionId: $s) @skip(if: $z)
    }
    fragment Leads on Mutation {
      searchLeads(subscriptionId: $s, input: { query: "plumbers", limit: $limit })
      ai: runAiTask(subscriptionId: $s, input: { prompt: "${"p".repeat(3000)}", maxTokens: 100 }) @skip(if: $y)
    }`,
    flags: ["x", "y", "z"],
    variables: { limit: 42 },
  },
  {
    name: "merged selections: the same response key from several places runs once, with the first arguments",
    query: `mutation($s: ID!, $x: Boolean!, $y: Boolean!) {
      dup: searchLeads(subscriptionId: $s, input: { query: "a", limit: 3 }) @include(if: $x)
      ...Dup
      ...Dup
      ... on Mutation { ...Dup }
      dup: searchLeads(subscriptionId: $s, input: { query: "a", limit: 3 }) @skip(if: $y)
      box @skip(if: $x) { searchLeads(subscriptionId: $s, input: { query: "q", limit: 5 }) }
      box @skip(if: $y) { searchLeads(subscriptionId: $s, input: { query: "q", limit: 5 }) label }
    }
    fragment Dup on Mutation { dup: searchLeads(subscriptionId: $s, input: { query: "a", limit: 3 }) @include(if: $y) }`,
    flags: ["x", "y"],
  },
  {
    name: "variables with defaults and an admin creditAmount",
    query: `mutation($s: ID!, $input: AiTaskInput!, $amount: Int = 7, $x: Boolean!) {
      runAiTask(subscriptionId: $s, input: $input, creditAmount: $amount) @include(if: $x)
      other: runAiTask(subscriptionId: $s, input: $input)
    }`,
    flags: ["x"],
    variables: { input: { prompt: "z".repeat(10_001), model: "LARGE", maxTokens: 8192 } },
  },
];

describe("preview field walker (against graphql-js execution)", () => {
  for (const doc of DOCUMENTS) {
    it(doc.name, async () => {
      const combos = doc.flags.length > 0 ? combinations(doc.flags) : [{}];
      const callCounts = new Set<number>();
      for (const flags of combos) {
        const variables = { s: SUB, ...doc.variables, ...flags };
        const expected = await executed(doc.query, variables);
        callCounts.add(expected.length);
        expect(previewed(doc.query, variables), JSON.stringify(flags)).toEqual(expected);
      }
      // The cases are not vacuous: fields run, and where there are flags they change what runs.
      expect(Math.max(...callCounts)).toBeGreaterThan(0);
      if (doc.flags.length > 0) expect(callCounts.size).toBeGreaterThan(1);
    });
  }

  it("prices the named operation of a document with several, and sums per type", async () => {
    const query = `
      mutation One($s: ID!) { flat(subscriptionId: $s) searchLeads(subscriptionId: $s, input: { query: "q", limit: 11 }) }
      mutation Two($s: ID!) { a: flat(subscriptionId: $s) b: flat(subscriptionId: $s) }`;
    expect(previewed(query, { s: SUB }, "Two")).toEqual(await executed(query, { s: SUB }, "Two"));
    const one = priceDocument(schema, meteredFields, { query, variables: { s: SUB }, operationName: "One", callerIsAdmin: false });
    expect(totalsByType(one)).toEqual([
      { type: "leads", amount: 11 },
      { type: "skiptrace", amount: 2 },
    ]);
  });

  it("remembered prices follow the variables and never the paying subscription", async () => {
    const query = `mutation($s: ID!, $limit: Int, $amount: Int, $prompt: String!) {
      searchLeads(subscriptionId: $s, input: { query: "q", limit: $limit }, creditAmount: $amount)
      runAiTask(subscriptionId: $s, input: { prompt: $prompt })
    }`;
    const other = "00000000-0000-4000-8000-000000000002";
    const runs: Record<string, unknown>[] = [
      { s: SUB, limit: 3, prompt: "a" },
      { s: other, limit: 3, prompt: "a" },
      { s: SUB, limit: 4, prompt: "a" },
      { s: SUB, limit: null, prompt: "a" }, // null: priced as the default, like the mutation
      { s: SUB, prompt: "a" }, // absent: the input default
      { s: SUB, limit: 3, amount: 0, prompt: "a" },
      { s: SUB, limit: 3, amount: null, prompt: "b".repeat(5_000) },
      { s: other, limit: 3, prompt: "a" },
    ];
    for (let round = 0; round < 2; round++) {
      for (const variables of runs) {
        expect(previewed(query, variables), JSON.stringify(variables)).toEqual(await executed(query, variables));
      }
    }
    // A refusal is never remembered as a price, and a price never hides a later refusal.
    expect(() => previewed(query, { s: SUB, limit: 501, prompt: "a" })).toThrow(/limit/);
    expect(() => previewed(query, { s: "", limit: 3, prompt: "a" })).toThrow(/needs a subscriptionId/);
    expect(() => priceDocument(schema, meteredFields, { query, variables: { s: SUB, limit: 3, amount: 0, prompt: "a" }, callerIsAdmin: false })).toThrow(
      /admins only/,
    );
  });

  it("a document selecting no metered field costs nothing", () => {
    expect(previewed(`query { ping }`, {})).toEqual([]);
    expect(previewed(`mutation { free(n: 2) box { label } }`, {})).toEqual([]);
  });
});

describe("preview refusals", () => {
  const price = (query: string, variables: Record<string, unknown> = {}, extra: { operationName?: string; callerIsAdmin?: boolean } = {}) =>
    priceDocument(schema, meteredFields, { query, variables, callerIsAdmin: extra.callerIsAdmin ?? false, operationName: extra.operationName });

  function refusal(fn: () => unknown): { code: unknown; message: string } {
    try {
      fn();
    } catch (err) {
      const e = err as { extensions?: { code?: unknown }; message: string };
      return { code: e.extensions?.code, message: e.message };
    }
    throw new Error("expected a refusal");
  }

  it("a document that does not parse or validate is BAD_USER_INPUT with the reason", () => {
    expect(refusal(() => price("mutation {"))).toEqual({ code: "BAD_USER_INPUT", message: expect.stringMatching(/^The document does not parse: Syntax Error/) });
    expect(refusal(() => price("mutation { nope }"))).toEqual({
      code: "BAD_USER_INPUT",
      message: expect.stringMatching(/^The document is not valid: Cannot query field "nope" on type "Mutation"/),
    });
    // The second time comes from the cache, with the same answer.
    expect(refusal(() => price("mutation { nope }")).message).toMatch(/Cannot query field "nope"/);
  });

  it("variables that do not fit, a missing operation name and an unknown one are BAD_USER_INPUT", () => {
    const doc = `mutation A($s: ID!) { flat(subscriptionId: $s) } mutation B($s: ID!) { flat(subscriptionId: $s) }`;
    expect(refusal(() => price(doc, {}, { operationName: "A" }))).toEqual({
      code: "BAD_USER_INPUT",
      message: expect.stringMatching(/^The variables do not fit the document: Variable "\$s" of required type "ID!" was not provided/),
    });
    expect(refusal(() => price(doc, { s: SUB })).message).toMatch(/several operations/);
    expect(refusal(() => price(doc, { s: SUB }, { operationName: "C" })).message).toBe('The document has no operation named "C"');
  });

  it("bad arguments of a metered field get the charge path's own message", () => {
    const query = `mutation($s: ID!, $t: Int) { runAiTask(subscriptionId: $s, input: { prompt: "hi", maxTokens: $t }) }`;
    const args = { subscriptionId: SUB, input: { prompt: "hi", model: "SMALL", maxTokens: 0 } };
    let expected = "";
    try {
      validateMeteredArgs(meteredFields.find((f) => f.fieldName === "runAiTask")!, args);
    } catch (err) {
      expected = (err as Error).message;
    }
    expect(expected).toMatch(/maxTokens/);
    expect(refusal(() => price(query, { s: SUB, t: 0 }))).toEqual({ code: "BAD_USER_INPUT", message: expected });
  });

  it("creditAmount is FORBIDDEN for a non-admin and the price for an admin", () => {
    const query = `mutation($s: ID!) { runAiTask(subscriptionId: $s, input: { prompt: "hi" }, creditAmount: 0) }`;
    expect(refusal(() => price(query, { s: SUB }))).toEqual({
      code: "FORBIDDEN",
      message: "creditAmount is for admins only: leave it out and the call is priced for you",
    });
    expect(price(query, { s: SUB }, { callerIsAdmin: true }).map((i) => i.amount)).toEqual([0]);
  });

  it("a fragment bomb is walked once per level, and a document expanding beyond the bound is refused", () => {
    // F9 spreads F8 twice, … : 2^9 expansions if every spread were followed.
    let bomb = `fragment F0 on Mutation { flat(subscriptionId: $s) }\n`;
    for (let i = 1; i < 10; i++) bomb += `fragment F${i} on Mutation { ...F${i - 1} ...F${i - 1} }\n`;
    const query = `mutation($s: ID!) { ...F9 }\n${bomb}`;
    expect(price(query, { s: SUB }).map((i) => i.path)).toEqual([["flat"]]);

    // Distinct nested paths cannot be merged (2^16 of them here): past the bound the walk stops.
    let nested = `fragment B0 on Box { label }\n`;
    for (let i = 1; i <= 16; i++) nested += `fragment B${i} on Box { a: inner { ...B${i - 1} } b: inner { ...B${i - 1} } }\n`;
    expect(2 ** 16).toBeGreaterThan(MAX_WALKED_SELECTIONS);
    expect(refusal(() => price(`mutation { box { ...B16 } }\n${nested}`)).message).toMatch(/too large to preview/);
  });
});
