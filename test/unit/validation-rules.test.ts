/**
 * The request validation rules on their own, against a small schema: the metered-field count
 * (aliases, fragments, nesting), GraphQL Armor's depth, alias and directive limits as we configure
 * them, unknown root operation types, and NUL characters in literals and variables.
 */
import { buildSchema, parse, specifiedRules, validate, type GraphQLError } from "graphql";
import { describe, expect, it } from "vitest";
import { maxMeteredFieldsRule } from "../../src/graphql/validation/max-metered-fields.js";
import { knownOperationTypesRule } from "../../src/graphql/validation/known-operation-types.js";
import { findNulCharacter, noNulInStringLiteralsRule } from "../../src/graphql/validation/nul-characters.js";
import { operationLimitRules } from "../../src/graphql/validation/operation-limits.js";
import type { MeteredField } from "../../src/credits/metered-field.js";

const schema = buildSchema(`
  type Query { pricey: Int, node: Node, free(s: String): Int, things: [Thing!]! }
  type Mutation { charge(n: Int): Int, other: Other }
  type Node { child: Node, name: String }
  type Thing { meteredChild: Int, plain: Int }
  type Other { charge: Int }
`);

const METERED = new Set(["Mutation.charge", "Query.pricey", "Thing.meteredChild"]);

function errorsOf(document: string, rules = [maxMeteredFieldsRule({ meteredCoordinates: METERED, max: 3 })]): string[] {
  return validate(schema, parse(document), [...specifiedRules, ...rules]).map((e: GraphQLError) => e.message);
}

const metered = (n: number) => Array.from({ length: n }, (_, i) => `c${i}: charge(n: ${i})`).join(" ");

describe("maxMeteredFieldsRule", () => {
  it("counts each alias of a metered field as one charge", () => {
    expect(errorsOf(`mutation { ${metered(3)} }`)).toEqual([]);
    expect(errorsOf(`mutation { ${metered(4)} }`)).toEqual([
      "The operation selects 4 metered fields; at most 3 are allowed in one operation. Split it into several requests.",
    ]);
  });

  it("names the operation and counts each operation on its own", () => {
    const errors = errorsOf(`mutation Small { ${metered(2)} } mutation Big { ${metered(5)} }`);
    expect(errors).toEqual([expect.stringMatching(/^Operation Big selects 5 metered fields/)]);
  });

  it("counts through fragments, every time a fragment is spread", () => {
    const document = `
      mutation { ...Two ...Two }
      fragment Two on Mutation { a: charge(n: 1) b: charge(n: 2) }`;
    expect(errorsOf(document)).toEqual([expect.stringMatching(/selects 4 metered fields/)]);
    expect(errorsOf(`mutation { ...Two } fragment Two on Mutation { a: charge(n: 1) b: charge(n: 2) }`)).toEqual([]);
  });

  it("counts through nested fragments and inline fragments", () => {
    const document = `
      mutation { ... on Mutation { x: charge } ...Outer }
      fragment Outer on Mutation { ...Inner ...Inner }
      fragment Inner on Mutation { y: charge }`;
    expect(errorsOf(document)).toEqual([]);
    expect(errorsOf(document, [maxMeteredFieldsRule({ meteredCoordinates: METERED, max: 2 })])).toEqual([
      expect.stringMatching(/selects 3 metered fields/),
    ]);
  });

  it("counts metered fields below the root and ignores same-named fields of other types", () => {
    expect(errorsOf(`{ pricey things { a: meteredChild b: meteredChild plain } }`)).toEqual([]);
    expect(errorsOf(`{ pricey things { a: meteredChild b: meteredChild c: meteredChild } }`)).toEqual([
      expect.stringMatching(/selects 4 metered fields/),
    ]);
    expect(errorsOf(`mutation { a: other { charge } b: other { charge } c: other { charge } d: other { charge } }`)).toEqual([]);
  });

  it("does not hang on a fragment cycle (graphql reports the cycle)", () => {
    const errors = errorsOf(`mutation { ...A } fragment A on Mutation { charge ...B } fragment B on Mutation { ...A }`);
    expect(errors).toEqual([expect.stringMatching(/Cannot spread fragment "A" within itself/)]);
  });

  it("counts a fragment bomb without expanding it", () => {
    const levels = 40;
    const fragments = [`fragment F0 on Mutation { charge }`];
    for (let i = 1; i <= levels; i++) fragments.push(`fragment F${i} on Mutation { ...F${i - 1} ...F${i - 1} }`);
    const errors = errorsOf(`mutation { ...F${levels} } ${fragments.join(" ")}`);
    expect(errors).toEqual([expect.stringMatching(new RegExp(`selects ${2 ** levels} metered fields`))]);
  });
});

describe("operationLimitRules (GraphQL Armor, as configured)", () => {
  const meteredFields = [{ coordinate: "Mutation.charge" }] as MeteredField[];
  const rules = operationLimitRules({ maxDepth: 3, maxAliases: 2, maxDirectives: 2, maxMeteredFields: 1 }, meteredFields);
  const check = (document: string) => errorsOf(document, rules);

  it("refuses depth over the limit, counting fields, not fragments", () => {
    expect(check(`{ node { child { name } } }`)).toEqual([]);
    expect(check(`{ node { child { child { name } } } }`)).toEqual([
      "Query depth limit of 3 exceeded, found 4. Simplify the operation or split it into several requests.",
    ]);
    expect(check(`{ node { ... on Node { ...C } } } fragment C on Node { child { name } }`)).toEqual([]);
    expect(check(`{ node { ...C } } fragment C on Node { child { child { name } } }`)).toEqual([expect.stringMatching(/found 4/)]);
  });

  it("exempts the standard __schema introspection from the depth limit", () => {
    expect(check(`{ __schema { types { fields { type { ofType { name } } } } } }`)).toEqual([]);
  });

  it("refuses aliases over the limit, __typename aliases counted like any other", () => {
    expect(check(`{ a: free b: free __typename }`)).toEqual([]);
    expect(check(`{ a: free b: free c: free }`)).toEqual([
      "Aliases limit of 2 exceeded, found 3. Simplify the operation or split it into several requests.",
    ]);
    expect(check(`{ t1: __typename t2: __typename t3: __typename }`)).toEqual([
      "Aliases limit of 2 exceeded, found 3. Simplify the operation or split it into several requests.",
    ]);
    expect(check(`{ a: free ...F } fragment F on Query { t1: __typename t2: __typename }`)).toEqual([expect.stringMatching(/found 3\./)]);
  });

  it("refuses directives over the limit", () => {
    expect(check(`{ free @include(if: true) @skip(if: false) }`)).toEqual([]);
    expect(check(`{ free @include(if: true) @skip(if: false) pricey @include(if: true) }`)).toEqual([
      "Directives limit of 2 exceeded, found 3. Simplify the operation or split it into several requests.",
    ]);
  });

  it("reports instead of throwing out of validate()", () => {
    expect(() => validate(schema, parse(`{ a: free b: free c: free d: free }`), rules)).not.toThrow();
  });
});

describe("knownOperationTypesRule", () => {
  it("refuses an operation type the schema does not have", () => {
    expect(errorsOf(`subscription { free }`, [knownOperationTypesRule])).toEqual([
      "This server has no subscription operations: send a query or a mutation.",
    ]);
    expect(errorsOf(`mutation { charge }`, [knownOperationTypesRule])).toEqual([]);
  });
});

describe("NUL characters", () => {
  it("are refused in string literals of the document", () => {
    expect(errorsOf(`{ free(s: "a\\u0000b") }`, [noNulInStringLiteralsRule])).toEqual([
      "A string in the document: text may not contain NUL characters (\\u0000): remove them and send the request again.",
    ]);
    // graphql 16 lets a raw NUL through inside a block string.
    expect(errorsOf(`{ free(s: """block \u0000 string""") }`, [noNulInStringLiteralsRule])).toEqual([expect.stringMatching(/NUL/)]);
    expect(errorsOf(`{ free(s: "a\\u0001b") }`, [noNulInStringLiteralsRule])).toEqual([]);
  });

  it("are found in variables, values and keys, with the path", () => {
    expect(findNulCharacter({ input: { records: [{ city: "ok" }, { city: "a\u0000" }] } })).toBe("variables.input.records[1].city");
    expect(findNulCharacter({ input: { "ke\u0000y": 1 } })).toBe("variables.input (a key)");
    expect(findNulCharacter({ input: { prompt: "fine 🚀 \u0001" }, n: 5, b: true, z: null })).toBeUndefined();
  });

  it("are searched without recursion, so a deeply nested value cannot overflow the stack", () => {
    let deep: unknown = "a\u0000";
    for (let i = 0; i < 200_000; i++) deep = [deep];
    expect(findNulCharacter(deep)).toMatch(/^variables(\[0\]){200000}$/);
  });
});
