/**
 * The table of hostile requests hostile-inputs.test.ts sends to a running server. Each one names
 * the HTTP status and error code it must get. Every case that carries a token other than a forged
 * one is aimed at one "target" subscription, whose balances and ledger must be unchanged when the
 * whole table has run: none of these requests may charge, grant or refund anything.
 */
import type { ErrorCode } from "../../src/errors/codes.js";

export type TokenName =
  | "owner"
  | "stranger"
  | "admin"
  | "wrongSecret"
  | "algNone"
  | "tamperedPayload"
  | "expired"
  | "missingSub"
  | "wrongIssuer"
  | "wrongAudience"
  | "missingIssuer"
  | "rs256Header"
  | "nulInSub"
  | "surrogateInSub";

export interface Fixture {
  /** The subscription every case aims at (owned by the "owner" token's subject). */
  readonly target: string;
  /** A DEBIT entry of the target, made before the table runs (for refundCharge cases). */
  readonly debitEntryId: string;
}

export interface RequestSpec {
  query?: string;
  variables?: unknown;
  operationName?: unknown;
  /** A raw body instead of {query, variables, operationName}. */
  body?: string;
  /** Default application/json. */
  contentType?: string;
  /** Default POST. */
  method?: "GET" | "POST";
  /** URL query string for GET (without "?"). */
  search?: string;
  /** Which token to send; default "owner". null sends none. */
  token?: TokenName | null;
  /** A raw Authorization header instead of a token. */
  authorization?: string;
  headers?: Record<string, string>;
}

export interface HostileCase {
  group: string;
  name: string;
  /** Schema coordinates the case needs; it is reported as not covered when the server lacks one. */
  needs?: string[];
  request(f: Fixture): RequestSpec;
  status: number;
  /** extensions.code of the first error; null when the answer is not a GraphQL body (e.g. 431). */
  code: ErrorCode | null;
  /** The first error's message must match. */
  message?: RegExp;
}

/** Strings that have broken SQL, formatting or text handling elsewhere. */
export const INJECTION_STRINGS: Record<string, string> = {
  "SQL quote": "'; drop table credit_ledger; --",
  "SQL boolean": "' OR '1'='1",
  "placeholder": "$1",
  "format string": "%s%n%x{0}{{7*7}}",
  "unicode": "Ωmega 🚀 \u202Eevil\u202C 𝕏 ﷽ e\u0301 \uFEFF",
};

/** NUL: PostgreSQL cannot store it in text; the API refuses it everywhere. */
export const NUL_STRING = "abc\u0000def";

const NOT_UUIDS: Record<string, string> = {
  "not a UUID": "not-a-uuid",
  "SQL quote": INJECTION_STRINGS["SQL quote"],
  "placeholder": "$1",
  "UUID with a newline": "7c1e4b5a-0000-4000-8000-000000000000\n",
  "UUID in braces": "{7c1e4b5a-0000-4000-8000-000000000000}",
  "nil UUID (well formed, absent)": "00000000-0000-0000-0000-000000000000",
  "100,000 characters": "a".repeat(100_000),
};

const AI = `mutation Ai($s: ID!, $i: AiTaskInput!, $c: Int) { runAiTask(subscriptionId: $s, input: $i, creditAmount: $c) { output } }`;
const LEADS = `mutation Leads($s: ID!, $i: LeadSearchInput!) { searchLeads(subscriptionId: $s, input: $i) { total } }`;
const MLS = `mutation Mls($s: ID!, $i: MlsSearchInput!) { searchMls(subscriptionId: $s, input: $i) { listings { mlsId } } }`;
const HARVEST = `mutation Harvest($s: ID!, $i: HarvestInput!) { harvestDomain(subscriptionId: $s, input: $i) { emails } }`;
const SKIP = `mutation Skip($s: ID!, $i: SkipTraceInput!) { skipTrace(subscriptionId: $s, input: $i) { matches { recordIndex } } }`;
const PHONES = `mutation Phones($s: ID!, $i: PhoneLookupInput!) { lookupPhones(subscriptionId: $s, input: $i) { results { phone } } }`;
const SUBSCRIPTION = `query Sub($id: ID!) { subscription(id: $id) { id balances { type balance } } }`;
const LEDGER = `query Ledger($s: ID!, $filter: LedgerFilter, $first: Int, $after: String) {
  creditLedger(subscriptionId: $s, filter: $filter, first: $first, after: $after) { edges { node { id } } } }`;
const USAGE = `query Usage($s: ID!, $from: DateTimeISO, $to: DateTimeISO) { creditUsage(subscriptionId: $s, groupBy: OPERATION, from: $from, to: $to) { key } }`;
const PREVIEW = `query Preview($input: CreditPreviewInput!) { creditPreview(input: $input) { sufficient } }`;
const ALERTS = `query Alerts($s: ID, $first: Int) { creditAlerts(subscriptionId: $s, first: $first) { edges { cursor } } }`;
const GRANT = `mutation Grant($input: GrantCreditsInput!) { grantCredits(input: $input) { id } }`;
const ADJUST = `mutation Adjust($input: AdjustCreditsInput!) { adjustCredits(input: $input) { id } }`;
const REFUND = `mutation Refund($input: RefundChargeInput!) { refundCharge(input: $input) { id } }`;
const STATUS = `mutation Status($id: ID!, $status: SubscriptionStatus!, $reason: String!) { setSubscriptionStatus(id: $id, status: $status, reason: $reason) { status } }`;
const CREATE = `mutation Create($input: CreateSubscriptionInput!) { createSubscription(input: $input) { id } }`;

const OK_PROMPT = { prompt: "hello" };
const RECORD = { firstName: "Ada", lastName: "Lovelace", address: "1 Main St" };

const bad = (status = 400, code: ErrorCode = "BAD_USER_INPUT") => ({ status, code });
const notFound = { status: 404, code: "NOT_FOUND" as const };
const unauthenticated = { status: 401, code: "UNAUTHENTICATED" as const };
const forbidden = { status: 403, code: "FORBIDDEN" as const };

function ai(f: Fixture, input: unknown, extra: Record<string, unknown> = {}): RequestSpec {
  return { query: AI, variables: { s: f.target, i: input, ...extra } };
}

export function hostileCases(): HostileCase[] {
  const cases: HostileCase[] = [];
  const add = (group: string, name: string, request: (f: Fixture) => RequestSpec, expected: { status: number; code: ErrorCode | null }, extra: Partial<HostileCase> = {}) =>
    cases.push({ group, name, request, ...expected, ...extra });

  // --- The HTTP body itself --------------------------------------------------------------------
  const T = "transport";
  add(T, "malformed JSON", () => ({ body: '{"query": "{ creditTypes { name } }"' }), bad(), { message: /Malformed JSON/ });
  add(T, "JSON string instead of an object", () => ({ body: '"{ creditTypes { name } }"' }), bad());
  add(T, "JSON null", () => ({ body: "null" }), bad());
  add(T, "JSON number", () => ({ body: "42" }), bad());
  add(T, "batched request (JSON array of two operations)", () => ({
    body: JSON.stringify([{ query: "{ creditTypes { name } }" }, { query: "{ creditTypes { name } }" }]),
  }), bad(), { message: /Batched requests are not accepted/ });
  add(T, "empty JSON array", () => ({ body: "[]" }), bad());
  add(T, "empty JSON object (no query)", () => ({ body: "{}" }), bad());
  add(T, "empty body", () => ({ body: "" }), bad());
  add(T, "query is a number", () => ({ body: '{"query": 42}' }), bad());
  add(T, "variables is a string", () => ({ body: JSON.stringify({ query: "{ creditTypes { name } }", variables: "x" }) }), bad());
  add(T, "variables is an array", () => ({ body: JSON.stringify({ query: "{ creditTypes { name } }", variables: [1] }) }), bad());
  add(T, "operationName is a number", () => ({ body: JSON.stringify({ query: "{ creditTypes { name } }", operationName: 42 }) }), bad());
  add(T, "extensions is a string", () => ({ body: JSON.stringify({ query: "{ creditTypes { name } }", extensions: "x" }) }), bad());
  add(T, "text/plain body (CSRF-style request)", () => ({ body: JSON.stringify({ query: "{ creditTypes { name } }" }), contentType: "text/plain" }), bad());
  add(T, "GET with a mutation", () => ({
    method: "GET",
    search: `query=${encodeURIComponent(`mutation { runAiTask(subscriptionId: "x", input: {prompt: "hi"}) { output } }`)}`,
    headers: { "apollo-require-preflight": "true" },
  }), bad(405)); // Apollo's own 4xx status, with Allow: POST (DESIGN.md, "Errors"; GraphQL over HTTP requires 405)
  add(T, "Authorization header of 20,000 bytes", () => ({ query: "{ viewer { id } }", authorization: `Bearer ${"a".repeat(20_000)}` }), { status: 431, code: null });

  // --- Hostile headers on a metered call that would otherwise charge ---------------------------
  const H = "headers";
  add(H, "Idempotency-Key of 300 characters", (f) => ({ ...ai(f, OK_PROMPT), headers: { "idempotency-key": "k".repeat(300) } }), bad());
  add(H, "Idempotency-Key with non-ASCII bytes", (f) => ({ ...ai(f, OK_PROMPT), headers: { "idempotency-key": "cl\u00e9-\u00ff" } }), bad());
  add(H, "Idempotency-Key with a tab inside", (f) => ({ ...ai(f, OK_PROMPT), headers: { "idempotency-key": "key\tvalue" } }), bad());
  // HTTP headers arrive as bytes (read as latin1): a lone surrogate can only come as its UTF-8-style bytes ED A0 80.
  add(H, "Idempotency-Key with the bytes of a lone surrogate", (f) => ({ ...ai(f, OK_PROMPT), headers: { "idempotency-key": "key-\u00ed\u00a0\u0080" } }), bad());

  // --- Malformed GraphQL ----------------------------------------------------------------------
  const G = "malformed GraphQL";
  add(G, "unterminated selection", () => ({ query: "{ viewer { id " }), bad());
  add(G, "unterminated argument list", () => ({ query: "mutation { runAiTask( }" }), bad());
  add(G, "empty document", () => ({ query: "" }), bad());
  add(G, "only a comment", () => ({ query: "# nothing here" }), bad());
  add(G, "two anonymous operations", () => ({ query: "{ creditTypes { name } } { viewer { id } }" }), bad());
  add(G, "operationName that does not exist", () => ({ query: "query A { creditTypes { name } }", operationName: "B" }), bad());
  add(G, "raw NUL character in the document", () => ({ query: "{ creditTypes { name \u0000 } }" }), bad());
  add(G, "invalid unicode escape (lone surrogate)", () => ({ query: '{ subscription(id: "\\uD800") { id } }' }), bad());
  // Whichever comes first: the parser's stack (about 5,000 levels in) or MAX_DOCUMENT_TOKENS (10,000 tokens).
  add(G, "100,000 nested selections", () => ({ query: `{ viewer ${"{a".repeat(100_000)}${"}".repeat(100_001)}` }), bad(), { message: /nested too deeply|lexical tokens/ });
  add(G, "variables nested 100,000 levels deep", (f) => ({ body: `{"query": ${JSON.stringify(AI)}, "variables": {"s": "${f.target}", "i": {"prompt": ${"[".repeat(100_000)}${"]".repeat(100_000)}}}}` }), bad());
  add(G, "preview variables nested 100,000 levels deep", (f) => ({
    body: `{"query": ${JSON.stringify(PREVIEW)}, "variables": {"input": {"subscriptionId": "${f.target}", "query": ${JSON.stringify(AI)}, "variables": {"i": ${'{"a":'.repeat(100_000)}1${"}".repeat(100_000)}}}}}`,
  }), bad(), { needs: ["Query.creditPreview"] });
  add(G, "fragment cycle", () => ({ query: "query { viewer { ...A } } fragment A on Viewer { id ...B } fragment B on Viewer { ...A }" }), bad());
  add(G, "subscription operation (the schema has none)", () => ({ query: "subscription { creditTypes { name } }" }), bad());
  add(G, "unknown directive", () => ({ query: "{ creditTypes @wipe { name } }" }), bad());
  add(G, "more than MAX_DOCUMENT_TOKENS (10,000) tokens", () => ({ query: `{ ${"viewer { id } ".repeat(3_000)} }` }), bad(), { message: /lexical tokens/ });
  add(G, "introspection with ofType nested 40 deep", () => ({ query: `{ __schema { types { ${"ofType { ".repeat(40)}name${" }".repeat(40)} } } }` }), bad(), { message: /ofType/ });
  add(G, "introspection looping type → fields → type", () => ({
    query: `{ __type(name: "Query") { fields { type { fields { type { fields { type { fields { name } } } } } } } } }`,
  }), bad());
  add(G, "persisted query whose sha256Hash is not its query's", () => ({
    body: JSON.stringify({ query: "{ creditTypes { name } }", extensions: { persistedQuery: { version: 1, sha256Hash: "0".repeat(64) } } }),
  }), bad(), { message: /sha256Hash/ });
  add(G, "raw lone surrogate in a string literal", (f) => ({ query: `mutation { runAiTask(subscriptionId: "${f.target}", input: {prompt: "abc\ud800"}) { output } }` }), bad());

  // --- Unknown names --------------------------------------------------------------------------
  const U = "unknown names";
  add(U, "unknown root field", () => ({ query: "{ nope }" }), bad());
  add(U, "unknown result field", () => ({ query: "{ viewer { id password } }" }), bad());
  add(U, "unknown argument", (f) => ({ query: `mutation { runAiTask(subscriptionId: "${f.target}", input: {prompt: "hi"}, free: true) { output } }` }), bad());
  add(U, "unknown input field (literal)", (f) => ({ query: `mutation { runAiTask(subscriptionId: "${f.target}", input: {prompt: "hi", price: 0}) { output } }` }), bad());
  add(U, "unknown input field (variable)", (f) => ai(f, { prompt: "hi", price: 0 }), bad());
  add(U, "unknown enum value (literal)", (f) => ({ query: `mutation { runAiTask(subscriptionId: "${f.target}", input: {prompt: "hi", model: HUGE}) { output } }` }), bad());
  add(U, "enum value written as a string literal", (f) => ({ query: `mutation { runAiTask(subscriptionId: "${f.target}", input: {prompt: "hi", model: "LARGE"}) { output } }` }), bad());
  add(U, "unknown enum value (variable)", (f) => ai(f, { prompt: "hi", model: "HUGE" }), bad());
  add(U, "enum value in lower case (variable)", (f) => ai(f, { prompt: "hi", model: "large" }), bad());
  add(U, "unknown subscription status", (f) => ({ query: STATUS, variables: { id: f.target, status: "DELETED", reason: "x" }, token: "admin" }), bad(), { needs: ["Mutation.setSubscriptionStatus"] });
  add(U, "unknown ledger kind in a filter", (f) => ({ query: LEDGER, variables: { s: f.target, filter: { kinds: ["WIPE"] } } }), bad(), { needs: ["Query.creditLedger"] });
  add(U, "unknown usage grouping", (f) => ({ query: `{ creditUsage(subscriptionId: "${f.target}", groupBy: HOUR) { key } }` }), bad(), { needs: ["Query.creditUsage"] });
  add(U, "unknown credit type in a grant", (f) => ({ query: GRANT, variables: { input: { subscriptionId: f.target, type: "gold", amount: 5, reason: "x" } }, token: "admin" }), bad(), { needs: ["Mutation.grantCredits"] });

  // --- Wrong types, missing and null values ---------------------------------------------------
  const W = "wrong types";
  add(W, "prompt is a number", (f) => ai(f, { prompt: 5 }), bad());
  add(W, "prompt is an object", (f) => ai(f, { prompt: { $gt: "" } }), bad());
  add(W, "maxTokens is a string", (f) => ai(f, { prompt: "hi", maxTokens: "12" }), bad());
  add(W, "maxTokens is \"NaN\"", (f) => ai(f, { prompt: "hi", maxTokens: "NaN" }), bad());
  add(W, "maxTokens is a boolean", (f) => ai(f, { prompt: "hi", maxTokens: true }), bad());
  add(W, "maxTokens is 1.5", (f) => ai(f, { prompt: "hi", maxTokens: 1.5 }), bad());
  add(W, "maxTokens is a string literal", (f) => ({ query: `mutation { runAiTask(subscriptionId: "${f.target}", input: {prompt: "hi", maxTokens: "12"}) { output } }` }), bad());
  add(W, "input is a string", (f) => ai(f, "prompt"), bad());
  add(W, "input is a list", (f) => ai(f, [OK_PROMPT]), bad());
  add(W, "input is null", (f) => ai(f, null), bad());
  add(W, "subscriptionId is an object", () => ({ query: AI, variables: { s: { id: 1 }, i: OK_PROMPT } }), bad());
  add(W, "subscriptionId is null", () => ({ query: AI, variables: { s: null, i: OK_PROMPT } }), bad());
  add(W, "subscriptionId is a number (ID accepts it; not a UUID)", () => ({ query: AI, variables: { s: 123, i: OK_PROMPT } }), notFound);
  add(W, "subscriptionId is empty", () => ({ query: AI, variables: { s: "", i: OK_PROMPT } }), bad());
  add(W, "subscriptionId is blank", () => ({ query: AI, variables: { s: "   ", i: OK_PROMPT } }), bad());
  add(W, "required variable missing", (f) => ({ query: AI, variables: { s: f.target } }), bad());
  add(W, "no variables at all", () => ({ query: AI }), bad());
  add(W, "required argument missing (input)", (f) => ({ query: `mutation { runAiTask(subscriptionId: "${f.target}") { output } }` }), bad());
  add(W, "required argument missing (subscriptionId)", () => ({ query: `mutation { runAiTask(input: {prompt: "hi"}) { output } }` }), bad());
  add(W, "variable declared with the wrong type", (f) => ({ query: `mutation ($s: Int!) { runAiTask(subscriptionId: $s, input: {prompt: "hi"}) { output } }`, variables: { s: 1 } }), bad());
  add(W, "records item is a string", (f) => ({ query: SKIP, variables: { s: f.target, i: { records: ["Ada Lovelace"] } } }), bad());
  add(W, "record missing a required field", (f) => ({ query: SKIP, variables: { s: f.target, i: { records: [{ firstName: "Ada" }] } } }), bad());
  add(W, "phones is a string, not a list", (f) => ({ query: PHONES, variables: { s: f.target, i: { phones: 5551234 } } }), bad());
  // A nullable variable with a default may stand where a value is required; sent as an explicit null
  // it passed coercion and was refused only when execution reached it: a masked 500 (an outside
  // fuzzing audit). Refused before anything runs now, wherever it is used.
  const nullWhereRequired = /was sent as null, but it is used where a value is required/;
  add(W, "null for a defaulted variable used as subscriptionId", (f) => ({ query: `mutation ($s: ID = "${f.target}") { runAiTask(subscriptionId: $s, input: {prompt: "hi"}) { output } }`, variables: { s: null } }), bad(), { message: nullWhereRequired });
  add(W, "null for a defaulted variable used as a whole input", (f) => ({ query: `mutation ($i: LeadSearchInput = {query: "x", limit: 2}) { searchLeads(subscriptionId: "${f.target}", input: $i) { total } }`, variables: { i: null } }), bad(), { message: nullWhereRequired });
  add(W, "null for a defaulted variable used as a list item", (f) => ({ query: `mutation ($r: SkipTraceRecord = {firstName: "Ada", lastName: "L", address: "1 Main St"}) { skipTrace(subscriptionId: "${f.target}", input: {records: [$r]}) { matches { recordIndex } } }`, variables: { r: null } }), bad(), { message: nullWhereRequired });
  add(W, "null for a defaulted variable used in @include(if:)", () => ({ query: `query ($c: Boolean = true) { __typename @include(if: $c) creditTypes { name } }`, variables: { c: null } }), bad(), { message: nullWhereRequired });
  add(W, "null for a defaulted variable used in a fragment", (f) => ({ query: `mutation ($s: ID = "${f.target}") { ...Run } fragment Run on Mutation { runAiTask(subscriptionId: $s, input: {prompt: "hi"}) { output } }`, variables: { s: null } }), bad(), { message: nullWhereRequired });
  add(W, "ledger cursor that is not one", (f) => ({ query: LEDGER, variables: { s: f.target, after: "garbage-cursor" } }), bad(), { needs: ["Query.creditLedger"] });
  add(W, "usage from is not a date", (f) => ({ query: USAGE, variables: { s: f.target, from: "yesterday" } }), bad(), { needs: ["Query.creditUsage"] });
  add(W, "usage from is year 99999", (f) => ({ query: USAGE, variables: { s: f.target, from: "99999-01-01T00:00:00Z" } }), bad(), { needs: ["Query.creditUsage"] });
  // Year 0 is a valid RFC 3339 date, and JavaScript's; PostgreSQL refused it, and these answered 500.
  const yearZero = /before 0001-01-01T00:00:00Z/;
  // graphql 16's own SingleFieldSubscriptionsRule threw on a variable in a subscription's root
  // condition: a 500 over HTTP and from creditPreview.
  const ROOT_CONDITION = `subscription ($f: Boolean!) { creditBalanceChanged(subscriptionId: "SUB") @include(if: $f) { balance } }`;
  const rootCondition = /must not use "@include" on its root field/;
  add(W, "subscription with @include(if: $f) on its root field, over HTTP", (f) => ({ query: ROOT_CONDITION.replace("SUB", f.target), variables: { f: true } }), bad(), { message: rootCondition });
  add(W, "creditPreview of a subscription with @include(if: $f) on its root field", (f) => ({ query: PREVIEW, variables: { input: { subscriptionId: f.target, query: ROOT_CONDITION.replace("SUB", f.target), variables: { f: true } } } }), bad(), { needs: ["Query.creditPreview"], message: rootCondition });
  add(W, "usage from is year 0", (f) => ({ query: USAGE, variables: { s: f.target, from: "0000-01-01T00:00:00Z" } }), bad(), { needs: ["Query.creditUsage"], message: yearZero });
  add(W, "usage to is year 1 at +01:00 (year 0 at UTC)", (f) => ({ query: USAGE, variables: { s: f.target, to: "0001-01-01T00:00:00+01:00" } }), bad(), { needs: ["Query.creditUsage"], message: yearZero });
  add(W, "ledger filter from is year 0 (literal)", (f) => ({ query: `{ creditLedger(subscriptionId: "${f.target}", filter: { from: "0000-01-01T00:00:00Z" }) { edges { node { id } } } }` }), bad(), { needs: ["Query.creditLedger"], message: yearZero });
  add(W, "ledger filter to is year 0, across subscriptions (admin)", () => ({ query: `query ($f: LedgerFilter) { creditLedger(filter: $f) { edges { node { id } } } }`, variables: { f: { to: "0000-06-01T00:00:00Z" } }, token: "admin" }), bad(), { needs: ["Query.creditLedger"], message: yearZero });
  add(W, "stats from is year 0 (admin)", () => ({ query: `query ($from: DateTimeISO) { creditStats(groupBy: OPERATION, from: $from) { key } }`, variables: { from: "0000-01-01T00:00:00Z" }, token: "admin" }), bad(), { needs: ["Query.creditStats"], message: yearZero });
  add(W, "preview variables is a list", (f) => ({ query: PREVIEW, variables: { input: { subscriptionId: f.target, query: AI, variables: [1] } } }), bad(), { needs: ["Query.creditPreview"] });

  // --- Numbers out of range -------------------------------------------------------------------
  const N = "numbers";
  add(N, "maxTokens 2^31 (variable)", (f) => ai(f, { prompt: "hi", maxTokens: 2 ** 31 }), bad());
  add(N, "maxTokens 2^31 (literal)", (f) => ({ query: `mutation { runAiTask(subscriptionId: "${f.target}", input: {prompt: "hi", maxTokens: 2147483648}) { output } }` }), bad());
  add(N, "maxTokens 1e308 (variable)", (f) => ai(f, { prompt: "hi", maxTokens: 1e308 }), bad());
  add(N, "maxTokens 1e308 (literal)", (f) => ({ query: `mutation { runAiTask(subscriptionId: "${f.target}", input: {prompt: "hi", maxTokens: 1e308}) { output } }` }), bad());
  add(N, "maxTokens 1e400 in the raw JSON (Infinity)", (f) => ({ body: `{"query": ${JSON.stringify(AI)}, "variables": {"s": "${f.target}", "i": {"prompt": "hi", "maxTokens": 1e400}}}` }), bad());
  add(N, "maxTokens -0 (literal)", (f) => ({ query: `mutation { runAiTask(subscriptionId: "${f.target}", input: {prompt: "hi", maxTokens: -0}) { output } }` }), bad());
  add(N, "maxTokens 0", (f) => ai(f, { prompt: "hi", maxTokens: 0 }), bad());
  add(N, "maxTokens -1", (f) => ai(f, { prompt: "hi", maxTokens: -1 }), bad());
  add(N, "maxTokens 8,193", (f) => ai(f, { prompt: "hi", maxTokens: 8193 }), bad());
  add(N, "leads limit 501", (f) => ({ query: LEADS, variables: { s: f.target, i: { query: "plumbers", limit: 501 } } }), bad());
  add(N, "leads limit 0", (f) => ({ query: LEADS, variables: { s: f.target, i: { query: "plumbers", limit: 0 } } }), bad());
  add(N, "leads limit -2^31", (f) => ({ query: LEADS, variables: { s: f.target, i: { query: "plumbers", limit: -(2 ** 31) } } }), bad());
  add(N, "MLS limit 501", (f) => ({ query: MLS, variables: { s: f.target, i: { area: "Austin", limit: 501 } } }), bad());
  add(N, "harvest limit 1,001", (f) => ({ query: HARVEST, variables: { s: f.target, i: { domain: "example.com", sources: ["bing"], limit: 1001 } } }), bad());
  add(N, "creditAmount from a non-admin", (f) => ai(f, OK_PROMPT, { c: 1 }), forbidden);
  add(N, "creditAmount 0 from a non-admin", (f) => ai(f, OK_PROMPT, { c: 0 }), forbidden);
  add(N, "creditAmount -1 from an admin", (f) => ({ ...ai(f, OK_PROMPT, { c: -1 }), token: "admin" }), bad());
  add(N, "creditAmount 2^31 from an admin", (f) => ({ ...ai(f, OK_PROMPT, { c: 2 ** 31 }), token: "admin" }), bad());
  add(N, "creditAmount 1e308 from an admin", (f) => ({ ...ai(f, OK_PROMPT, { c: 1e308 }), token: "admin" }), bad());
  add(N, "ledger first -1", (f) => ({ query: LEDGER, variables: { s: f.target, first: -1 } }), bad(), { needs: ["Query.creditLedger"] });
  add(N, "ledger first 0", (f) => ({ query: LEDGER, variables: { s: f.target, first: 0 } }), bad(), { needs: ["Query.creditLedger"] });
  add(N, "ledger first 1,001", (f) => ({ query: LEDGER, variables: { s: f.target, first: 1001 } }), bad(), { needs: ["Query.creditLedger"] });
  add(N, "ledger first 2^31", (f) => ({ query: LEDGER, variables: { s: f.target, first: 2 ** 31 } }), bad(), { needs: ["Query.creditLedger"] });
  add(N, "alerts first -1", () => ({ query: ALERTS, variables: { first: -1 }, token: "admin" }), bad(), { needs: ["Query.creditAlerts"] });
  add(N, "grant amount 0", (f) => ({ query: GRANT, variables: { input: { subscriptionId: f.target, type: "ai", amount: 0, reason: "x" } }, token: "admin" }), bad(), { needs: ["Mutation.grantCredits"] });
  add(N, "grant amount -5", (f) => ({ query: GRANT, variables: { input: { subscriptionId: f.target, type: "ai", amount: -5, reason: "x" } }, token: "admin" }), bad(), { needs: ["Mutation.grantCredits"] });
  add(N, "grant amount 2^31", (f) => ({ query: GRANT, variables: { input: { subscriptionId: f.target, type: "ai", amount: 2 ** 31, reason: "x" } }, token: "admin" }), bad(), { needs: ["Mutation.grantCredits"] });
  add(N, "grant amount 1e308", (f) => ({ query: GRANT, variables: { input: { subscriptionId: f.target, type: "ai", amount: 1e308, reason: "x" } }, token: "admin" }), bad(), { needs: ["Mutation.grantCredits"] });
  add(N, "adjust delta 0", (f) => ({ query: ADJUST, variables: { input: { subscriptionId: f.target, type: "ai", delta: 0, reason: "x" } }, token: "admin" }), bad(), { needs: ["Mutation.adjustCredits"] });
  add(N, "adjust delta -2^31", (f) => ({ query: ADJUST, variables: { input: { subscriptionId: f.target, type: "ai", delta: -(2 ** 31), reason: "x" } }, token: "admin" }), bad(), { needs: ["Mutation.adjustCredits"] });
  add(N, "refund amount -5", (f) => ({ query: REFUND, variables: { input: { entryId: f.debitEntryId, amount: -5, reason: "x" } }, token: "admin" }), bad(), { needs: ["Mutation.refundCharge"] });
  add(N, "refund amount 0", (f) => ({ query: REFUND, variables: { input: { entryId: f.debitEntryId, amount: 0, reason: "x" } }, token: "admin" }), bad(), { needs: ["Mutation.refundCharge"] });
  add(N, "refund amount 2^31", (f) => ({ query: REFUND, variables: { input: { entryId: f.debitEntryId, amount: 2 ** 31, reason: "x" } }, token: "admin" }), bad(), { needs: ["Mutation.refundCharge"] });
  add(N, "refund amount \"NaN\"", (f) => ({ query: REFUND, variables: { input: { entryId: f.debitEntryId, amount: "NaN", reason: "x" } }, token: "admin" }), bad(), { needs: ["Mutation.refundCharge"] });
  add(N, "initial credits -1", () => ({ query: CREATE, variables: { input: { ownerId: "x", plan: "p", initialCredits: [{ type: "ai", amount: -1 }] } }, token: "admin" }), bad(), { needs: ["Mutation.createSubscription"] });

  // --- Empty and oversized lists and strings --------------------------------------------------
  const L = "lists and lengths";
  add(L, "sources empty", (f) => ({ query: HARVEST, variables: { s: f.target, i: { domain: "example.com", sources: [] } } }), bad());
  add(L, "records empty", (f) => ({ query: SKIP, variables: { s: f.target, i: { records: [] } } }), bad());
  add(L, "phones empty", (f) => ({ query: PHONES, variables: { s: f.target, i: { phones: [] } } }), bad());
  add(L, "records 1,001", (f) => ({ query: SKIP, variables: { s: f.target, i: { records: Array.from({ length: 1001 }, () => RECORD) } } }), bad());
  add(L, "phones 1,001", (f) => ({ query: PHONES, variables: { s: f.target, i: { phones: Array.from({ length: 1001 }, (_, i) => `+1555${String(i).padStart(7, "0")}`) } } }), bad());
  add(L, "sources 11", (f) => ({ query: HARVEST, variables: { s: f.target, i: { domain: "example.com", sources: ["bing", "crtsh", "dnsdumpster", "duckduckgo", "github", "hackertarget", "otx", "rapiddns", "urlscan", "yahoo", "bing"] } } }), bad());
  add(L, "sources 1,001", (f) => ({ query: HARVEST, variables: { s: f.target, i: { domain: "example.com", sources: Array.from({ length: 1001 }, () => "bing") } } }), bad());
  add(L, "sources duplicated", (f) => ({ query: HARVEST, variables: { s: f.target, i: { domain: "example.com", sources: ["bing", "bing"] } } }), bad());
  add(L, "prompt empty", (f) => ai(f, { prompt: "" }), bad());
  add(L, "prompt 100,001 characters", (f) => ai(f, { prompt: "x".repeat(100_001) }), bad());
  add(L, "leads query 501 characters", (f) => ({ query: LEADS, variables: { s: f.target, i: { query: "q".repeat(501) } } }), bad());
  add(L, "domain 300 characters", (f) => ({ query: HARVEST, variables: { s: f.target, i: { domain: `${"a".repeat(296)}.com`, sources: ["bing"] } } }), bad());
  add(L, "record name 100,000 characters", (f) => ({ query: SKIP, variables: { s: f.target, i: { records: [{ ...RECORD, firstName: "n".repeat(100_000) }] } } }), bad());
  add(L, "ledger filter with no kinds", (f) => ({ query: LEDGER, variables: { s: f.target, filter: { kinds: [] } } }), bad(), { needs: ["Query.creditLedger"] });
  add(L, "grant reason 1,001 characters", (f) => ({ query: GRANT, variables: { input: { subscriptionId: f.target, type: "ai", amount: 5, reason: "r".repeat(1001) } }, token: "admin" }), bad(), { needs: ["Mutation.grantCredits"] });
  add(L, "grant reason blank", (f) => ({ query: GRANT, variables: { input: { subscriptionId: f.target, type: "ai", amount: 5, reason: "  " } }, token: "admin" }), bad(), { needs: ["Mutation.grantCredits"] });
  add(L, "refund reason 100,000 characters", (f) => ({ query: REFUND, variables: { input: { entryId: f.debitEntryId, reason: "r".repeat(100_000) } }, token: "admin" }), bad(), { needs: ["Mutation.refundCharge"] });
  add(L, "status reason 100,000 characters", (f) => ({ query: STATUS, variables: { id: f.target, status: "SUSPENDED", reason: "r".repeat(100_000) }, token: "admin" }), bad(), { needs: ["Mutation.setSubscriptionStatus"] });
  add(L, "preview of a 1,001-record skipTrace", (f) => ({
    query: PREVIEW,
    variables: { input: { subscriptionId: f.target, query: SKIP, variables: { s: f.target, i: { records: Array.from({ length: 1001 }, () => RECORD) } } } },
  }), bad(), { needs: ["Query.creditPreview"] });

  // --- Injection strings where they are refused -----------------------------------------------
  const I = "injection strings";
  for (const [label, text] of Object.entries(INJECTION_STRINGS)) {
    add(I, `domain: ${label}`, (f) => ({ query: HARVEST, variables: { s: f.target, i: { domain: text, sources: ["bing"] } } }), bad());
    add(I, `sources: ${label}`, (f) => ({ query: HARVEST, variables: { s: f.target, i: { domain: "example.com", sources: [text] } } }), bad());
    add(I, `grant credit type: ${label}`, (f) => ({ query: GRANT, variables: { input: { subscriptionId: f.target, type: text, amount: 5, reason: "x" } }, token: "admin" }), bad(), { needs: ["Mutation.grantCredits"] });
    add(I, `preview document: ${label}`, (f) => ({ query: PREVIEW, variables: { input: { subscriptionId: f.target, query: text } } }), bad(), { needs: ["Query.creditPreview"] });
    add(I, `operationName: ${label}`, () => ({ query: "query A { creditTypes { name } }", operationName: text }), bad());
  }

  // --- NUL characters: PostgreSQL cannot store them, so they are refused everywhere -----------
  const Z = "NUL characters";
  add(Z, "prompt", (f) => ai(f, { prompt: NUL_STRING }), bad(), { message: /NUL/ });
  add(Z, "prompt (escaped in a literal)", (f) => ({ query: `mutation { runAiTask(subscriptionId: "${f.target}", input: {prompt: "abc\\u0000def"}) { output } }` }), bad(), { message: /NUL/ });
  add(Z, "leads query and location", (f) => ({ query: LEADS, variables: { s: f.target, i: { query: NUL_STRING, location: NUL_STRING } } }), bad());
  add(Z, "MLS area", (f) => ({ query: MLS, variables: { s: f.target, i: { area: NUL_STRING } } }), bad());
  add(Z, "harvest domain", (f) => ({ query: HARVEST, variables: { s: f.target, i: { domain: NUL_STRING, sources: ["bing"] } } }), bad());
  add(Z, "skip-trace record", (f) => ({ query: SKIP, variables: { s: f.target, i: { records: [{ ...RECORD, city: NUL_STRING }] } } }), bad());
  add(Z, "phone", (f) => ({ query: PHONES, variables: { s: f.target, i: { phones: [NUL_STRING] } } }), bad());
  add(Z, "subscriptionId", () => ({ query: AI, variables: { s: `${"7c1e4b5a-0000-4000-8000-00000000000"}\u0000`, i: OK_PROMPT } }), bad());
  add(Z, "subscription(id)", () => ({ query: SUBSCRIPTION, variables: { id: NUL_STRING } }), bad());
  add(Z, "ledger filter operation", (f) => ({ query: LEDGER, variables: { s: f.target, filter: { operation: NUL_STRING } } }), bad(), { needs: ["Query.creditLedger"] });
  add(Z, "ledger filter type", (f) => ({ query: LEDGER, variables: { s: f.target, filter: { type: NUL_STRING } } }), bad(), { needs: ["Query.creditLedger"] });
  add(Z, "ledger cursor", (f) => ({ query: LEDGER, variables: { s: f.target, after: NUL_STRING } }), bad(), { needs: ["Query.creditLedger"] });
  add(Z, "preview document", (f) => ({ query: PREVIEW, variables: { input: { subscriptionId: f.target, query: `{ creditTypes { name } } # ${NUL_STRING}` } } }), bad(), { needs: ["Query.creditPreview"] });
  add(Z, "grant reason", (f) => ({ query: GRANT, variables: { input: { subscriptionId: f.target, type: "ai", amount: 5, reason: NUL_STRING } }, token: "admin" }), bad(), { needs: ["Mutation.grantCredits"] });
  add(Z, "adjust reason", (f) => ({ query: ADJUST, variables: { input: { subscriptionId: f.target, type: "ai", delta: 1, reason: NUL_STRING } }, token: "admin" }), bad(), { needs: ["Mutation.adjustCredits"] });
  add(Z, "refund reason", (f) => ({ query: REFUND, variables: { input: { entryId: f.debitEntryId, amount: 1, reason: NUL_STRING } }, token: "admin" }), bad(), { needs: ["Mutation.refundCharge"] });
  add(Z, "status reason", (f) => ({ query: STATUS, variables: { id: f.target, status: "SUSPENDED", reason: NUL_STRING }, token: "admin" }), bad(), { needs: ["Mutation.setSubscriptionStatus"] });
  add(Z, "new subscription owner and plan", () => ({ query: CREATE, variables: { input: { ownerId: NUL_STRING, plan: NUL_STRING } }, token: "admin" }), bad(), { needs: ["Mutation.createSubscription"] });
  add(Z, "operationName", () => ({ query: "query A { creditTypes { name } }", operationName: `A${NUL_STRING}` }), bad());

  // --- Ill-formed Unicode: an unpaired surrogate (JSON's "\ud800") cannot be stored -------------
  const S = "ill-formed Unicode";
  add(S, "prompt with a lone high surrogate", (f) => ai(f, { prompt: "abc\ud800" }), bad(), { message: /well-formed Unicode/ });
  add(S, "prompt with a lone low surrogate", (f) => ai(f, { prompt: "\udc00abc" }), bad(), { message: /well-formed Unicode/ });
  add(S, "skip-trace record city", (f) => ({ query: SKIP, variables: { s: f.target, i: { records: [{ ...RECORD, city: "Paris\ud83d" }] } } }), bad());
  add(S, "input object key", (f) => ai(f, { prompt: "hi", ["x\udfff"]: 1 }), bad());
  add(S, "grant reason", (f) => ({ query: GRANT, variables: { input: { subscriptionId: f.target, type: "ai", amount: 5, reason: "gift\ud800" } }, token: "admin" }), bad(), { needs: ["Mutation.grantCredits"] });
  add(S, "new subscription owner", () => ({ query: CREATE, variables: { input: { ownerId: "eve\ud800", plan: "p" } }, token: "admin" }), bad(), { needs: ["Mutation.createSubscription"] });
  add(S, "subscriptionId", (f) => ({ query: AI, variables: { s: `${f.target}\ud800`, i: OK_PROMPT } }), bad());
  add(S, "operationName", () => ({ query: "query A { creditTypes { name } }", operationName: "A\ud800" }), bad());

  // --- Ids that are not UUIDs (or are, but exist nowhere) -------------------------------------
  const D = "ids";
  for (const [label, id] of Object.entries(NOT_UUIDS)) {
    add(D, `runAiTask subscriptionId: ${label}`, () => ({ query: AI, variables: { s: id, i: OK_PROMPT } }), notFound);
    add(D, `subscription(id): ${label}`, () => ({ query: SUBSCRIPTION, variables: { id } }), notFound);
    add(D, `creditLedger subscriptionId: ${label}`, () => ({ query: LEDGER, variables: { s: id } }), notFound, { needs: ["Query.creditLedger"] });
    add(D, `creditUsage subscriptionId: ${label}`, () => ({ query: USAGE, variables: { s: id } }), notFound, { needs: ["Query.creditUsage"] });
    add(D, `creditPreview subscriptionId: ${label}`, () => ({ query: PREVIEW, variables: { input: { subscriptionId: id, query: "{ creditTypes { name } }" } } }), notFound, { needs: ["Query.creditPreview"] });
    add(D, `creditAlerts subscriptionId: ${label}`, () => ({ query: ALERTS, variables: { s: id }, token: "admin" }), notFound, { needs: ["Query.creditAlerts"] });
    add(D, `grantCredits subscriptionId: ${label}`, () => ({ query: GRANT, variables: { input: { subscriptionId: id, type: "ai", amount: 5, reason: "x" } }, token: "admin" }), notFound, { needs: ["Mutation.grantCredits"] });
    add(D, `adjustCredits subscriptionId: ${label}`, () => ({ query: ADJUST, variables: { input: { subscriptionId: id, type: "ai", delta: 5, reason: "x" } }, token: "admin" }), notFound, { needs: ["Mutation.adjustCredits"] });
    add(D, `setSubscriptionStatus id: ${label}`, () => ({ query: STATUS, variables: { id, status: "SUSPENDED", reason: "x" }, token: "admin" }), notFound, { needs: ["Mutation.setSubscriptionStatus"] });
    add(D, `refundCharge entryId: ${label}`, () => ({ query: REFUND, variables: { input: { entryId: id, reason: "x" } }, token: "admin" }), notFound, { needs: ["Mutation.refundCharge"] });
  }
  add(D, "refundCharge entryId that is a subscription id, not an entry", (f) => ({ query: REFUND, variables: { input: { entryId: f.target, reason: "x" } }, token: "admin" }), notFound, { needs: ["Mutation.refundCharge"] });

  // --- Who may do what ------------------------------------------------------------------------
  const A = "authorization";
  add(A, "metered call without a token", (f) => ({ ...ai(f, OK_PROMPT), token: null }), unauthenticated);
  add(A, "metered call on someone else's subscription", (f) => ({ ...ai(f, OK_PROMPT), token: "stranger" }), forbidden);
  add(A, "someone else's subscription(id)", (f) => ({ query: SUBSCRIPTION, variables: { id: f.target }, token: "stranger" }), forbidden);
  add(A, "someone else's ledger", (f) => ({ query: LEDGER, variables: { s: f.target }, token: "stranger" }), forbidden, { needs: ["Query.creditLedger"] });
  add(A, "grantCredits by the owner (not an admin)", (f) => ({ query: GRANT, variables: { input: { subscriptionId: f.target, type: "ai", amount: 1000, reason: "free money" } } }), forbidden, { needs: ["Mutation.grantCredits"] });
  add(A, "refundCharge by the owner (not an admin)", (f) => ({ query: REFUND, variables: { input: { entryId: f.debitEntryId, reason: "please" } } }), forbidden, { needs: ["Mutation.refundCharge"] });
  add(A, "setSubscriptionStatus by the owner", (f) => ({ query: STATUS, variables: { id: f.target, status: "CANCELLED", reason: "x" } }), forbidden, { needs: ["Mutation.setSubscriptionStatus"] });
  add(A, "ledgerAudit by the owner", () => ({ query: "{ ledgerAudit { ok } }" }), forbidden, { needs: ["Query.ledgerAudit"] });

  // --- Forged and broken tokens (each on a metered call that would otherwise charge) ----------
  const K = "tokens";
  const forged: [string, RequestSpec][] = [
    ["signed with the wrong secret", { token: "wrongSecret" }],
    ["alg none", { token: "algNone" }],
    ["tampered payload (sub and admin role changed, signature kept)", { token: "tamperedPayload" }],
    ["expired", { token: "expired" }],
    ["no sub claim", { token: "missingSub" }],
    ["wrong issuer", { token: "wrongIssuer" }],
    ["wrong audience", { token: "wrongAudience" }],
    ["no issuer claim (issuer configured)", { token: "missingIssuer" }],
    ["RS256 header over an HS256 signature", { token: "rs256Header" }],
    ["validly signed, but NUL in sub", { token: "nulInSub" }],
    ["validly signed, but a lone surrogate in sub", { token: "surrogateInSub" }],
    ["not a JWT", { authorization: "Bearer not-a-jwt" }],
    ["three empty segments", { authorization: "Bearer .." }],
    ["Basic scheme", { authorization: "Basic dXNlcjpwYXNz" }],
    ["Bearer without a token", { authorization: "Bearer " }],
    ["two tokens", { authorization: "Bearer a.b.c d.e.f" }],
  ];
  for (const [label, auth] of forged) {
    add(K, label, (f) => ({ ...ai(f, OK_PROMPT, { c: 0 }), ...auth }), unauthenticated);
  }

  return cases;
}
