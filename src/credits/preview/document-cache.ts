/**
 * Parsed and validated documents for creditPreview, cached by their text, so a client that previews
 * the same operation again (the usual case: the same document with other variables) costs no parse,
 * no validation and no walk. Failures are cached too: a broken document is refused as cheaply as it
 * was the first time. One cache per executable schema, since validity depends on the schema.
 */
import {
  GraphQLError,
  getOperationAST,
  parse,
  specifiedRules,
  type DocumentNode,
  type GraphQLSchema,
  type OperationDefinitionNode,
} from "graphql";
import { BadUserInputError } from "../../errors/errors.js";
import type { DocumentChecks } from "../../graphql/validation/index.js";
import { validateDocument } from "../../graphql/validation/subscription-root-conditions.js";
import { tooManyTokensMessage } from "../../graphql/validation/document-tokens.js";
import type { MeteredField } from "../metered-field.js";
import type { Price } from "../pricing.js";
import { findMeteredFields, indexMeteredFields, type MeteredFieldIndex, type MeteredFieldOccurrence } from "./field-walker.js";
import { LRUCache } from "lru-cache";

/**
 * Bounds of the cache. Weight is the query's length in characters; a parsed document takes some tens
 * of times its text in memory, so 2,000,000 characters keep the cache well under 100 MB.
 */
export const DOCUMENT_CACHE_MAX_ENTRIES = 1_000;
export const DOCUMENT_CACHE_MAX_CHARACTERS = 2_000_000;
/** Bounds of the price memo (see price-document.ts); weight is the key's length. */
export const PRICE_MEMO_MAX_ENTRIES = 10_000;
export const PRICE_MEMO_MAX_CHARACTERS = 2_000_000;

/** The operation of a document that a preview prices, with every metered field it may run. */
export interface OperationPlan {
  readonly operation: OperationDefinitionNode;
  /** The document the operation is in: its fragments, for the page budget. */
  readonly document: DocumentNode;
  readonly meteredFields: readonly MeteredFieldOccurrence[];
}

/** A document that parsed and validated, with its plans per operation name, built on first use. */
class PreparedDocument {
  private readonly plans = new Map<string, OperationPlan>();

  constructor(
    private readonly schema: GraphQLSchema,
    private readonly metered: MeteredFieldIndex,
    readonly document: DocumentNode,
  ) {}

  /** The plan of the named operation (or of the only one); BAD_USER_INPUT when there is no such operation. */
  plan(operationName: string | null | undefined): OperationPlan {
    const key = operationName ?? "";
    const cached = this.plans.get(key);
    if (cached) return cached;
    const operation = getOperationAST(this.document, operationName);
    if (!operation) {
      throw new BadUserInputError(
        operationName
          ? `The document has no operation named "${operationName}"`
          : "The document has several operations: say which one to price with operationName",
        "operationName",
      );
    }
    // Only names that exist get here, so this map is bounded by the document's own operations.
    const plan = { operation, document: this.document, meteredFields: findMeteredFields(this.schema, this.document, operation, this.metered) };
    this.plans.set(key, plan);
    return plan;
  }
}

/** A refusal is kept as its message: each request gets its own fresh error object. */
type CachedDocument = { ok: true; prepared: PreparedDocument } | { ok: false; problem: string };

/** No limits beyond graphql's own (a schema previewed outside the server, as unit tests do). */
const GRAPHQL_CHECKS_ONLY: DocumentChecks = { parseOptions: {}, validationRules: [] };

/** Why a document does not parse; the token limit in the words a request would get (document-tokens.ts). */
function parseProblem(err: unknown): string {
  if (!(err instanceof GraphQLError)) return "The document does not parse: it is not a GraphQL document";
  return tooManyTokensMessage(err.message) ?? `The document does not parse: ${err.message}`;
}

/** Lists validation messages as one line, the first few only: enough to fix the document, never a wall of text. */
function describeErrors(errors: readonly GraphQLError[]): string {
  const shown = errors.slice(0, 5).map((e) => e.message);
  const more = errors.length > shown.length ? ` (and ${errors.length - shown.length} more)` : "";
  return shown.join("; ") + more;
}

export class PreviewDocumentCache {
  // lru-cache bounds both the entry count and the total size; an entry larger than the whole size
  // budget is simply not stored.
  private readonly cache = new LRUCache<string, CachedDocument>({
    max: DOCUMENT_CACHE_MAX_ENTRIES,
    maxSize: DOCUMENT_CACHE_MAX_CHARACTERS,
  });
  private readonly metered: MeteredFieldIndex;
  /** Prices already computed, by occurrence and the values of its price variables (price-document.ts). */
  readonly prices = new LRUCache<string, Price>({ max: PRICE_MEMO_MAX_ENTRIES, maxSize: PRICE_MEMO_MAX_CHARACTERS });

  constructor(
    private readonly schema: GraphQLSchema,
    meteredFields: readonly MeteredField[],
    /** The server's own parse options and rules (tokens, depth, aliases, metered fields …): a preview refuses what a run would refuse. */
    private readonly checks: DocumentChecks = GRAPHQL_CHECKS_ONLY,
  ) {
    this.metered = indexMeteredFields(meteredFields);
  }

  get size(): number {
    return this.cache.size;
  }

  /** The plan for `query`'s operation; throws BAD_USER_INPUT when the document does not parse or validate. */
  plan(query: string, operationName: string | null | undefined): OperationPlan {
    let cached = this.cache.get(query);
    if (!cached) {
      cached = this.prepare(query);
      this.cache.set(query, cached, { size: Math.max(1, query.length) });
    }
    if (!cached.ok) throw new BadUserInputError(cached.problem, "query");
    return cached.prepared.plan(operationName);
  }

  private prepare(query: string): CachedDocument {
    let document: DocumentNode;
    try {
      document = parse(query, this.checks.parseOptions);
    } catch (err) {
      return { ok: false, problem: parseProblem(err) };
    }
    const errors = validateDocument(this.schema, document, [...specifiedRules, ...this.checks.validationRules]);
    if (errors.length > 0) {
      return { ok: false, problem: `The document is not valid: ${describeErrors(errors)}` };
    }
    return { ok: true, prepared: new PreparedDocument(this.schema, this.metered, document) };
  }
}

const cachesBySchema = new WeakMap<GraphQLSchema, PreviewDocumentCache>();

/** The cache of one executable schema, created on first use and dropped with the schema. */
export function previewDocumentCache(
  schema: GraphQLSchema,
  meteredFields: readonly MeteredField[],
  checks: DocumentChecks = GRAPHQL_CHECKS_ONLY,
): PreviewDocumentCache {
  let cache = cachesBySchema.get(schema);
  if (!cache) {
    cache = new PreviewDocumentCache(schema, meteredFields, checks);
    cachesBySchema.set(schema, cache);
  }
  return cache;
}
