import { buildSchema } from "graphql";
import { describe, expect, it } from "vitest";
import { CREDITS_DIRECTIVE_SDL, readMeteredFields } from "../../src/credits/credits-directive.js";
import { CREDIT_TYPE_NAMES } from "../../src/credits/credit-types.js";
import { ESTIMATORS } from "../../src/credits/estimators/registry.js";
import { METERS } from "../../src/credits/meters/registry.js";
import {
  DOCUMENT_CACHE_MAX_CHARACTERS,
  DOCUMENT_CACHE_MAX_ENTRIES,
  PreviewDocumentCache,
  previewDocumentCache,
} from "../../src/credits/preview/document-cache.js";

describe("PreviewDocumentCache", () => {
  const schema = buildSchema(`
    ${CREDITS_DIRECTIVE_SDL}
    type Query { ping: Int }
    type Mutation { flat(subscriptionId: ID!): Int @credits(type: "ai", amount: 3) }
  `);
  const metered = readMeteredFields(schema, { creditTypes: CREDIT_TYPE_NAMES, estimators: ESTIMATORS, meters: METERS });

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

  it("keeps the documents' total length within its character budget, dropping the least recently used", () => {
    const cache = new PreviewDocumentCache(schema, metered);
    const padding = "#".repeat(DOCUMENT_CACHE_MAX_CHARACTERS / 10);
    const documentOf = (i: number) => `mutation($s: ID!) { f${i}: flat(subscriptionId: $s) } ${padding}\n`;
    const first = cache.plan(documentOf(0), null);
    for (let i = 1; i < 15; i++) {
      cache.plan(documentOf(i), null);
      expect(cache.size).toBeLessThan(10);
    }
    // The first document was evicted: asking again prepares a new plan.
    expect(cache.plan(documentOf(0), null)).not.toBe(first);
    // The latest document is still there: the same plan comes back.
    const latest = cache.plan(documentOf(14), null);
    expect(cache.plan(documentOf(14), null)).toBe(latest);
  });

  it("is one cache per schema", () => {
    const other = buildSchema(`${CREDITS_DIRECTIVE_SDL} type Query { ping: Int }`);
    expect(previewDocumentCache(schema, metered)).toBe(previewDocumentCache(schema, metered));
    expect(previewDocumentCache(other, [])).not.toBe(previewDocumentCache(schema, metered));
  });
});
