import { buildSchema } from "graphql";
import { describe, expect, it } from "vitest";
import { CREDITS_DIRECTIVE_SDL, readMeteredFields } from "../../src/credits/credits-directive.js";
import { CREDIT_TYPE_NAMES } from "../../src/credits/credit-types.js";
import { ESTIMATORS } from "../../src/credits/estimators/registry.js";
import {
  DOCUMENT_CACHE_MAX_CHARACTERS,
  DOCUMENT_CACHE_MAX_ENTRIES,
  PreviewDocumentCache,
  previewDocumentCache,
} from "../../src/credits/preview/document-cache.js";
import { LruCache } from "../../src/credits/preview/lru-cache.js";

describe("LruCache", () => {
  it("evicts the least recently used entry beyond maxEntries", () => {
    const cache = new LruCache<string, number>({ maxEntries: 3, maxWeight: 100 });
    cache.set("a", 1);
    cache.set("b", 2);
    cache.set("c", 3);
    expect(cache.get("a")).toBe(1); // a is now the most recent
    cache.set("d", 4);
    expect(cache.get("b")).toBeUndefined();
    expect([cache.get("a"), cache.get("c"), cache.get("d")]).toEqual([1, 3, 4]);
    expect(cache.size).toBe(3);
  });

  it("keeps the total weight within maxWeight and never stores an entry heavier than the budget", () => {
    const cache = new LruCache<string, string>({ maxEntries: 100, maxWeight: 10 });
    cache.set("a", "a", 4);
    cache.set("b", "b", 4);
    cache.set("c", "c", 4); // 12 > 10: a goes
    expect(cache.get("a")).toBeUndefined();
    expect(cache.weight).toBe(8);
    cache.set("huge", "h", 11);
    expect(cache.get("huge")).toBeUndefined();
    expect(cache.weight).toBe(8);
    cache.set("b", "b2", 1); // replacing adjusts the weight
    expect(cache.weight).toBe(5);
    expect(cache.get("b")).toBe("b2");
  });
});

describe("PreviewDocumentCache", () => {
  const schema = buildSchema(`
    ${CREDITS_DIRECTIVE_SDL}
    type Query { ping: Int }
    type Mutation { flat(subscriptionId: ID!): Int @credits(type: "ai", amount: 3) }
  `);
  const metered = readMeteredFields(schema, { creditTypes: CREDIT_TYPE_NAMES, estimators: ESTIMATORS });

  it("parses, validates and walks a document once: later previews reuse the same plan", () => {
    const cache = new PreviewDocumentCache(schema, metered);
    const query = `mutation A($s: ID!) { flat(subscriptionId: $s) } mutation B($s: ID!) { x: flat(subscriptionId: $s) }`;
    const a = cache.plan(query, "A");
    expect(cache.plan(query, "A")).toBe(a);
    const b = cache.plan(query, "B");
    expect(b).not.toBe(a);
    expect(b.meteredFields.map((f) => f.path)).toEqual([["x"]]);
    expect(cache.size).toBe(1);
  });

  it("stays within its bounds however many distinct documents arrive", () => {
    const cache = new PreviewDocumentCache(schema, metered);
    for (let i = 0; i < DOCUMENT_CACHE_MAX_ENTRIES + 50; i++) cache.plan(`mutation($s: ID!) { f${i}: flat(subscriptionId: $s) }`, null);
    expect(cache.size).toBe(DOCUMENT_CACHE_MAX_ENTRIES);
    // A document longer than the whole budget is priced but not kept.
    const long = `mutation($s: ID!) { flat(subscriptionId: $s) } ${"#".repeat(DOCUMENT_CACHE_MAX_CHARACTERS)}\n`;
    expect(cache.plan(long, null).meteredFields).toHaveLength(1);
    expect(cache.size).toBe(DOCUMENT_CACHE_MAX_ENTRIES);
  });

  it("is one cache per schema", () => {
    const other = buildSchema(`${CREDITS_DIRECTIVE_SDL} type Query { ping: Int }`);
    expect(previewDocumentCache(schema, metered)).toBe(previewDocumentCache(schema, metered));
    expect(previewDocumentCache(other, [])).not.toBe(previewDocumentCache(schema, metered));
  });
});
