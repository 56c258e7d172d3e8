/**
 * The document budget (src/graphql/validation/document-budget.ts) on its own: fields of one response
 * name in one selection set (counted through inline fragments and fragment spreads), operations in a
 * document, field selections in a document; each at and past its limit. Then the walk's cost: a
 * fragment spread into many selection sets, a chain of fragments and a fragment "bomb" are counted
 * without walking a fragment again, and a fragment cycle does not hang. Last, how a refusal reaches
 * validate() (validateDocument's stand-in), next to the subscription root conditions it generalises.
 */
import { readdirSync, readFileSync } from "node:fs";
import { buildSchema, parse, specifiedRules, type DocumentNode, type GraphQLError } from "graphql";
import { describe, expect, it } from "vitest";
import {
  documentBudgetError,
  MAX_FIELD_SELECTIONS,
  MAX_FRAGMENTS,
  MAX_OPERATIONS,
  MAX_SAME_RESPONSE_NAME,
} from "../../src/graphql/validation/document-budget.js";
import { documentToValidate, validateDocument } from "../../src/graphql/validation/subscription-root-conditions.js";
import { requestValidationRules } from "../../src/graphql/validation/index.js";

const budget = (text: string) => documentBudgetError(parse(text))?.message;
const repeat = (text: string, n: number) => Array.from({ length: n }, () => text).join(" ");
const aliased = (n: number, field = "__typename") => Array.from({ length: n }, (_, i) => `a${i}: ${field}`).join(" ");

function timed<T>(run: () => T): { result: T; ms: number } {
  const started = performance.now();
  const result = run();
  return { result, ms: performance.now() - started };
}

describe("documentBudgetError: fields of one response name in one selection set", () => {
  it("accepts the limit and refuses one more, saying which field, how often and what to do", () => {
    expect(MAX_SAME_RESPONSE_NAME).toBe(20);
    expect(budget(`{ ${repeat("creditTypes { name }", 20)} }`)).toBeUndefined();
    expect(budget(`{ ${repeat("creditTypes { name }", 21)} }`)).toBe(
      'The operation selects "creditTypes" 21 times in one selection set (fragments included); at most 20 are accepted: select a field once (or use aliases).',
    );
    expect(budget(`query Many { ${repeat("creditTypes { name }", 300)} }`)).toMatch(/^The operation "Many" selects "creditTypes" 300 times in one selection set/);
  });

  it("counts response names: aliases are names of their own, and an alias can repeat a name too", () => {
    expect(budget(`{ ${aliased(300)} }`)).toBeUndefined();
    expect(budget(`{ ${repeat("x: creditTypes { name }", 10)} ${repeat("x: plans { id }", 11)} }`)).toMatch(/selects "x" 21 times/);
  });

  it("counts each selection set on its own, nested ones included", () => {
    const twenty = repeat("name", 20);
    expect(budget(`{ ${repeat(`creditTypes { ${twenty} }`, 20)} }`)).toBeUndefined();
    expect(budget(`{ creditTypes { ${twenty} name } }`)).toMatch(/selects "name" 21 times/);
    expect(budget(`{ ${repeat(`a: creditTypes { ${twenty} }`, 20)} b: plans { id } }`)).toBeUndefined();
  });

  it("counts the fields of inline fragments in the selection set that holds them", () => {
    expect(budget(`{ ${repeat("name", 10)} ... { ${repeat("name", 5)} ... on Query { ${repeat("name", 5)} } } }`)).toBeUndefined();
    expect(budget(`{ ${repeat("name", 10)} ... { ${repeat("name", 5)} ... on Query { ${repeat("name", 6)} } } }`)).toMatch(/selects "name" 21 times/);
    expect(budget(`{ ${repeat("... { name }", 21)} }`)).toMatch(/selects "name" 21 times/);
  });

  it("counts the fields a named fragment brings in, once per selection set however often it is spread there", () => {
    const fragment = `fragment Ten on Query { ${repeat("name", 10)} }`;
    expect(budget(`{ ${repeat("name", 10)} ...Ten ...Ten ...Ten } ${fragment}`)).toBeUndefined();
    expect(budget(`{ ${repeat("name", 11)} ...Ten } ${fragment}`)).toMatch(/selects "name" 21 times/);
    // Through an inline fragment, and through a fragment spread in a fragment.
    expect(budget(`{ name ... { ...Ten ...Outer } } fragment Outer on Query { ...Ten } ${fragment}`)).toMatch(/selects "name" 21 times/);
    expect(budget(`{ ...A ...B } fragment A on Query { ${repeat("name", 10)} } fragment B on Query { ${repeat("name", 10)} }`)).toBeUndefined();
    expect(budget(`{ ...A ...B name } fragment A on Query { ${repeat("name", 10)} } fragment B on Query { ${repeat("name", 10)} }`)).toMatch(
      /selects "name" 21 times/,
    );
  });

  it("refuses a fragment over the limit by its own name, used or not", () => {
    expect(budget(`{ creditTypes { name } } fragment Big on CreditTypeInfo { ${repeat("name", 21)} }`)).toMatch(
      /^The fragment "Big" selects "name" 21 times in one selection set/,
    );
  });

  it("counts an undefined fragment as nothing (graphql's own rules report it)", () => {
    expect(budget(`{ ${repeat("name", 20)} ...Missing }`)).toBeUndefined();
  });

  it("points at the selection set over the limit", () => {
    const error = documentBudgetError(parse(`{ plans { id } creditTypes {\n ${repeat("name", 21)} } }`))!;
    expect(error.locations).toEqual([{ line: 1, column: 28 }]);
  });
});

describe("documentBudgetError: operations and field selections in a document", () => {
  it("accepts 50 operations and refuses 51", () => {
    expect(MAX_OPERATIONS).toBe(50);
    const operations = (n: number) => Array.from({ length: n }, (_, i) => `query q${i} { __typename }`).join(" ");
    expect(budget(operations(50))).toBeUndefined();
    expect(budget(operations(51))).toBe(
      "The document has 51 operations; at most 50 are accepted in one document: send only the operation you run (a request runs one).",
    );
    expect(budget(operations(1600))).toMatch(/^The document has 1600 operations/);
  });

  it("accepts 100 fragment definitions and refuses 101, chained or spread together", () => {
    expect(MAX_FRAGMENTS).toBe(100);
    // Each fragment one distinct alias: no response name repeats, so only the fragments' number is over.
    const together = (n: number) =>
      `{ ${Array.from({ length: n }, (_, i) => `...F${i}`).join(" ")} } ` + Array.from({ length: n }, (_, i) => `fragment F${i} on Query { a${i}: __typename }`).join(" ");
    const chained = (n: number) =>
      `{ ...F0 } ` + Array.from({ length: n }, (_, i) => `fragment F${i} on Query { a${i}: __typename ${i + 1 < n ? `...F${i + 1}` : ""} }`).join(" ");
    expect(budget(together(100))).toBeUndefined();
    expect(budget(chained(100))).toBeUndefined();
    expect(budget(together(101))).toBe(
      "The document defines 101 fragments; at most 100 are accepted in one document: send only the fragments the operation spreads.",
    );
    expect(budget(chained(400))).toMatch(/^The document defines 400 fragments/);
    // Located at the first fragment over the limit.
    const text = together(101);
    expect(documentBudgetError(parse(text))!.locations).toEqual([{ line: 1, column: text.indexOf("fragment F100 ") + 1 }]);
  });

  it("accepts 2,000 field selections and refuses 2,001, each fragment definition's fields counted once", () => {
    expect(MAX_FIELD_SELECTIONS).toBe(2000);
    expect(budget(`{ ${aliased(2000)} }`)).toBeUndefined();
    expect(budget(`{ ${aliased(2001)} }`)).toBe(
      "The document selects 2001 fields; at most 2000 are accepted in one document (a fragment's fields count once): split it into several requests.",
    );
    // 1,000 aliased fields in a fragment spread 999 times (one field each to hold it): 1,999 selections.
    const spreads = Array.from({ length: 999 }, (_, i) => `s${i}: creditTypes { ...F }`).join(" ");
    expect(budget(`{ ${spreads} } fragment F on CreditTypeInfo { ${aliased(1000, "name")} }`)).toBeUndefined();
    expect(budget(`{ ${spreads} extra: __typename __typename } fragment F on CreditTypeInfo { ${aliased(1000, "name")} }`)).toMatch(
      /^The document selects 2001 fields/,
    );
  });
});

describe("documentBudgetError: cost of the walk", () => {
  it("counts a fragment spread into many selection sets once, not once per spread", () => {
    // 950 selection sets of two fields and a spread, F's 59 fields: 1,959 selections.
    const spreads = Array.from({ length: 950 }, (_, i) => `s${i}: creditTypes { name ...F }`).join(" ");
    const document = parse(`{ ${spreads} } fragment F on CreditTypeInfo { ${repeat("name", 19)} ${aliased(40, "type")} }`, { noLocation: true });
    const { result, ms } = timed(() => documentBudgetError(document));
    expect(result).toBeUndefined();
    expect(ms).toBeLessThan(500);
    // One more `name` in F puts each selection set at 21.
    const over = parse(`{ ${spreads} } fragment F on CreditTypeInfo { ${repeat("name", 20)} }`);
    expect(documentBudgetError(over)?.message).toMatch(/^The operation selects "name" 21 times/);
  });

  it("counts a chain of fragments (as many as accepted), each spreading the next, without walking it again for each", () => {
    const chain = (n: number) =>
      [`{ creditTypes { ...F${n - 1} } }`, "fragment F0 on CreditTypeInfo { a0: name }"]
        .concat(Array.from({ length: n - 1 }, (_, i) => `fragment F${i + 1} on CreditTypeInfo { a${i + 1}: name ...F${i} }`))
        .join("\n");
    const { result, ms } = timed(() => documentBudgetError(parse(chain(100))));
    expect(result).toBeUndefined();
    expect(ms).toBeLessThan(500);
    // With `name` in every fragment of a chain of 21, the first fragment to hold 21 of them is refused.
    const named = [`{ creditTypes { ...F20 } }`, "fragment F0 on CreditTypeInfo { name }"]
      .concat(Array.from({ length: 20 }, (_, i) => `fragment F${i + 1} on CreditTypeInfo { name ...F${i} }`))
      .join("\n");
    expect(budget(named)).toMatch(/^The fragment "F20" selects "name" 21 times/);
  });

  it("counts a fragment bomb (each fragment spreading the one before in two fields) without expanding it", () => {
    const bomb = [`{ viewer { ...B40 } }`, "fragment B0 on Viewer { id }"]
      .concat(Array.from({ length: 40 }, (_, i) => `fragment B${i + 1} on Viewer { a: subscriptions { ...B${i} } b: subscriptions { ...B${i} } }`))
      .join("\n");
    const { result, ms } = timed(() => documentBudgetError(parse(bomb)));
    expect(result).toBeUndefined();
    expect(ms).toBeLessThan(500);
  });

  it("counts the same fragments spread together in many selection sets once", () => {
    const big = (name: string) => `fragment ${name} on CreditTypeInfo { ${Array.from({ length: 600 }, (_, i) => `${name}${i}: name`).join(" ")} }`;
    const spreads = Array.from({ length: 700 }, (_, i) => `s${i}: creditTypes { ...F ...G }`).join(" ");
    const { result, ms } = timed(() => documentBudgetError(parse(`{ ${spreads} } ${big("F")} ${big("G")}`)));
    expect(result).toBeUndefined();
    expect(ms).toBeLessThan(500);
  });

  it("does not hang on fragment cycles, counting each fragment of a cycle once (graphql reports the cycle)", () => {
    expect(budget("{ creditTypes { ...A } } fragment A on CreditTypeInfo { name ...B } fragment B on CreditTypeInfo { name ...A }")).toBeUndefined();
    expect(budget("{ creditTypes { ...A } } fragment A on CreditTypeInfo { ...A name }")).toBeUndefined();
    expect(
      budget(`{ creditTypes { ...A } } fragment A on CreditTypeInfo { ${repeat("name", 11)} ...B } fragment B on CreditTypeInfo { ${repeat("name", 10)} ...A }`),
    ).toMatch(/selects "name" 21 times/);
  });
});

describe("documentBudgetError: ordinary documents", () => {
  const operationsDirectory = new URL("../operations/", import.meta.url);

  it.each(readdirSync(operationsDirectory).filter((file) => file.endsWith(".graphql")))("accepts every operation of test/operations/%s", (file) => {
    expect(documentBudgetError(parse(readFileSync(new URL(file, operationsDirectory), "utf8")))).toBeUndefined();
  });

  it("accepts fragments, inline fragments, aliases and a few operations together", () => {
    const document = `
      query Balances($s: ID!) { subscription(id: $s) { ...Sub balances { type balance } } viewer { id ...V } }
      query Types { creditTypes { name } a: creditTypes { name } ... on Query { creditTypes { name } } }
      fragment Sub on BillingSubscription { id plan status ...Owner }
      fragment Owner on BillingSubscription { id ownerId }
      fragment V on Viewer { id isAdmin subscriptions { ...Sub } }
    `;
    expect(budget(document)).toBeUndefined();
  });
});

describe("validateDocument: a budget refusal is a validation error, before graphql validates the document", () => {
  const schema = buildSchema(readFileSync(new URL("../../schema/schema.graphql", import.meta.url), "utf8"));
  const rules = [...specifiedRules, ...requestValidationRules({ maxDepth: 12, maxAliases: 50, maxDirectives: 50, maxMeteredFields: 20 }, [])];
  const messages = (errors: readonly GraphQLError[]) => errors.map((error) => error.message);

  it("refuses the document with the budget's error alone, located in the document sent", () => {
    const document = parse(`{\n  ${repeat("creditTypes { name }", 300)} }`);
    const errors = validateDocument(schema, document, rules);
    expect(messages(errors)).toEqual([expect.stringMatching(/^The operation selects "creditTypes" 300 times in one selection set/)]);
    expect(errors[0].locations).toEqual([{ line: 1, column: 1 }]);
  });

  it("hands validate() a stand-in for a refused document, and the document itself otherwise", () => {
    const refused = parse(`{ ${repeat("creditTypes { name }", 21)} }`);
    const accepted = parse(`{ ${repeat("creditTypes { name }", 20)} }`);
    expect(documentToValidate(refused)).not.toBe(refused);
    expect(documentToValidate(accepted)).toBe(accepted);
    expect(validateDocument(schema, accepted, rules)).toEqual([]);
  });

  it("still refuses a condition on a subscription's root field first, as before", () => {
    const both = parse(`subscription { creditBalanceChanged(subscriptionId: "s") @skip(if: true) { ${repeat("balance", 21)} } }`);
    expect(messages(validateDocument(schema, both, rules))).toEqual([
      'Subscription must not use "@skip" on its root field: a subscription has exactly one root field, always selected.',
    ]);
  });

  it("is cheap next to what it spares: 300 repeats are refused in far less time than graphql spent validating them", () => {
    const document: DocumentNode = parse(`{ ${repeat("creditTypes { name }", 300)} }`);
    validateDocument(schema, document, rules);
    const { ms } = timed(() => validateDocument(schema, document, rules));
    expect(ms).toBeLessThan(50);
  });
});
