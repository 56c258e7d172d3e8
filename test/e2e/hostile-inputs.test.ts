/**
 * Hostile inputs over HTTP, on PGlite and PostgreSQL: every request of the table in
 * hostile-inputs-table.ts gets its expected status and code, never a 500, never SQL text, a stack or
 * an internal name, and none of them changes a balance or writes a ledger entry. Then the strings
 * that are valid however odd they look (SQL quotes, placeholders, unicode) are accepted, charged
 * exactly once each and stored verbatim. What the tests saw is written to
 * test-results/hostile-inputs.json, which docs/reliability.md quotes.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { sql } from "drizzle-orm";
import { isObjectType, type GraphQLSchema } from "graphql";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintToken } from "../../src/auth/mint.js";
import { queryRows } from "../../src/db/database.js";
import { auditLedger } from "../../src/ledger/audit.js";
import { balancesOfSubscriptions } from "../../src/ledger/balances.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { fundedSubscription, startTestServer, type TestServer } from "../helpers/test-app.js";
import { hostileCases, INJECTION_STRINGS, type Fixture, type HostileCase, type RequestSpec, type TokenName } from "./hostile-inputs-table.js";

const SECRET = "hostile-inputs-test-secret-of-enough-length";
const ISSUER = "https://auth.hostile.test";
const AUDIENCE = "graphql-credits";
const OWNER = "hostile-owner";
const SPENDER = "odd-strings-owner";

/** No response body may contain any of these (compared in lower case). */
const FORBIDDEN_IN_BODY = ["select ", "insert ", "update ", "stack", "at /", "drizzle", "postgres"];

const CASES = hostileCases();

interface Observed {
  group: string;
  name: string;
  status: number;
  code: string | null;
  message: string | null;
  expectedStatus: number;
  expectedCode: string | null;
  leaked: string[];
}

interface BackendReport {
  cases: number;
  covered: number;
  notCovered: { case: string; missing: string[] }[];
  byStatus: Record<string, number>;
  byCode: Record<string, number>;
  unexpected: Observed[];
  serverErrors: number;
  leaks: number;
  target?: {
    balancesBefore: Record<string, number>;
    balancesAfter: Record<string, number>;
    targetLedgerRowsBefore: number;
    targetLedgerRowsAfter: number;
    allLedgerRowsBefore: number;
    allLedgerRowsAfter: number;
    auditOk: boolean;
  };
  accepted?: { requests: number; charged: Record<string, number>; granted: number; storedVerbatim: number; auditOk: boolean };
  observed: Observed[];
}

const report: Record<string, BackendReport> = {};

afterAll(() => {
  mkdirSync("test-results", { recursive: true });
  const summary = Object.fromEntries(
    Object.entries(report).map(([backend, r]) => [backend, { ...r, observed: undefined, groups: groupCounts(r.observed) }]),
  );
  writeFileSync(
    "test-results/hostile-inputs.json",
    `${JSON.stringify({ generatedAt: new Date().toISOString(), backends: summary, cases: report[Object.keys(report)[0]]?.observed ?? [] }, null, 2)}\n`,
  );
});

function groupCounts(observed: Observed[]): Record<string, { cases: number; statuses: Record<string, number> }> {
  const groups: Record<string, { cases: number; statuses: Record<string, number> }> = {};
  for (const o of observed) {
    const g = (groups[o.group] ??= { cases: 0, statuses: {} });
    g.cases++;
    g.statuses[o.status] = (g.statuses[o.status] ?? 0) + 1;
  }
  return groups;
}

function hasCoordinate(schema: GraphQLSchema, coordinate: string): boolean {
  const [typeName, fieldName] = coordinate.split(".");
  const type = schema.getType(typeName);
  return isObjectType(type) && Object.hasOwn(type.getFields(), fieldName);
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

async function forgeTokens(): Promise<Record<TokenName, string>> {
  const key = new TextEncoder().encode(SECRET);
  const inAnHour = Math.floor(Date.now() / 1000) + 3600;
  const owner = await mintToken({ sub: OWNER, secret: SECRET, issuer: ISSUER, audience: AUDIENCE });
  const [ownerHeader, , ownerSignature] = owner.split(".");
  return {
    owner,
    stranger: await mintToken({ sub: "hostile-stranger", secret: SECRET, issuer: ISSUER, audience: AUDIENCE }),
    admin: await mintToken({ sub: "hostile-admin", admin: true, secret: SECRET, issuer: ISSUER, audience: AUDIENCE }),
    wrongSecret: await mintToken({ sub: OWNER, secret: "not-the-server-secret-but-as-long-as-it", issuer: ISSUER, audience: AUDIENCE }),
    algNone: `${b64({ alg: "none", typ: "JWT" })}.${b64({ sub: OWNER, iss: ISSUER, aud: AUDIENCE, exp: inAnHour })}.`,
    tamperedPayload: `${ownerHeader}.${b64({ sub: "hostile-stranger", app_metadata: { role: "admin" }, iss: ISSUER, aud: AUDIENCE, exp: inAnHour })}.${ownerSignature}`,
    expired: await new SignJWT({})
      .setProtectedHeader({ alg: "HS256" })
      .setSubject(OWNER)
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt(Math.floor(Date.now() / 1000) - 7200)
      .setExpirationTime(Math.floor(Date.now() / 1000) - 3600)
      .sign(key),
    missingSub: await new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setIssuer(ISSUER).setAudience(AUDIENCE).setExpirationTime("1h").sign(key),
    wrongIssuer: await mintToken({ sub: OWNER, secret: SECRET, issuer: "https://evil.test", audience: AUDIENCE }),
    wrongAudience: await mintToken({ sub: OWNER, secret: SECRET, issuer: ISSUER, audience: "someone-else" }),
    missingIssuer: await mintToken({ sub: OWNER, secret: SECRET, audience: AUDIENCE }),
    rs256Header: `${b64({ alg: "RS256", typ: "JWT" })}.${owner.split(".")[1]}.${ownerSignature}`,
    nulInSub: await mintToken({ sub: `${OWNER}\u0000x`, secret: SECRET, issuer: ISSUER, audience: AUDIENCE }),
    // jose writes the payload with JSON.stringify, which escapes a lone surrogate: the token carries "\ud800" as is.
    surrogateInSub: await mintToken({ sub: `${OWNER}\ud800`, secret: SECRET, issuer: ISSUER, audience: AUDIENCE }),
  };
}

interface RawResponse {
  status: number;
  text: string;
  json: any;
}

async function send(url: string, spec: RequestSpec, tokens: Record<TokenName, string>): Promise<RawResponse> {
  const method = spec.method ?? "POST";
  const headers: Record<string, string> = { ...(spec.headers ?? {}) };
  if (method === "POST") headers["content-type"] = spec.contentType ?? "application/json";
  const token = spec.token === undefined ? "owner" : spec.token;
  if (spec.authorization !== undefined) headers.authorization = spec.authorization;
  else if (token) headers.authorization = `Bearer ${tokens[token]}`;
  const body =
    method === "GET"
      ? undefined
      : (spec.body ?? JSON.stringify({ query: spec.query, variables: spec.variables, operationName: spec.operationName }));
  const res = await fetch(`${url}/graphql${spec.search ? `?${spec.search}` : ""}`, { method, headers, body });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, text, json };
}

async function ledgerRows(database: TestDatabase, subscriptionId?: string): Promise<number> {
  const rows = await queryRows<{ n: number | string }>(
    database.db,
    subscriptionId
      ? sql`select count(*) as n from credit_ledger where subscription_id = ${subscriptionId}::uuid`
      : sql`select count(*) as n from credit_ledger`,
  );
  return Number(rows[0].n);
}

async function balances(database: TestDatabase, subscriptionId: string): Promise<Record<string, number>> {
  const rows = await balancesOfSubscriptions(database.db, [subscriptionId]);
  return Object.fromEntries(rows.map((r) => [r.creditType, r.balance]));
}

describe.each(BACKENDS)("hostile inputs on %s", (backend) => {
  let database: TestDatabase;
  let server: TestServer;
  let tokens: Record<TokenName, string>;
  let fixture: Fixture;
  const backendReport: BackendReport = {
    cases: CASES.length,
    covered: 0,
    notCovered: [],
    byStatus: {},
    byCode: {},
    unexpected: [],
    serverErrors: 0,
    leaks: 0,
    observed: [],
  };
  report[backend] = backendReport;
  let balancesBefore: Record<string, number>;
  let targetRowsBefore: number;
  let allRowsBefore: number;

  beforeAll(async () => {
    database = await createTestDatabase(backend);
    server = await startTestServer({
      database,
      env: { JWT_SECRET: SECRET, JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE, RATE_LIMIT_DEFAULT: "100000/1m" },
    });
    tokens = await forgeTokens();
    const target = await fundedSubscription(database, OWNER, { ai: 100, leads: 100, skiptrace: 100 });
    // One real debit, so refundCharge cases have a DEBIT entry to aim at.
    const charged = await send(
      server.url,
      { query: `mutation ($s: ID!) { runAiTask(subscriptionId: $s, input: { prompt: "setup" }) { output } }`, variables: { s: target } },
      tokens,
    );
    expect(charged.status).toBe(200);
    fixture = { target, debitEntryId: charged.json.extensions.credits.charges[0].entryId };
    balancesBefore = await balances(database, target);
    targetRowsBefore = await ledgerRows(database, target);
    allRowsBefore = await ledgerRows(database);
  });
  afterAll(async () => {
    await server?.close();
    await database?.dispose();
  });

  for (const hostile of CASES) {
    it(`${hostile.group}: ${hostile.name} → ${hostile.status}${hostile.code ? ` ${hostile.code}` : ""}`, async () => {
      const missing = (hostile.needs ?? []).filter((c) => !hasCoordinate(server.app.schema, c));
      if (missing.length > 0) {
        backendReport.notCovered.push({ case: `${hostile.group}: ${hostile.name}`, missing });
        return;
      }
      backendReport.covered++;
      const res = await send(server.url, hostile.request(fixture), tokens);
      const firstError = res.json?.errors?.[0];
      const lower = res.text.toLowerCase();
      const observed: Observed = {
        group: hostile.group,
        name: hostile.name,
        status: res.status,
        code: firstError?.extensions?.code ?? null,
        message: typeof firstError?.message === "string" ? firstError.message.slice(0, 160) : null,
        expectedStatus: hostile.status,
        expectedCode: hostile.code,
        leaked: FORBIDDEN_IN_BODY.filter((term) => lower.includes(term)),
      };
      backendReport.observed.push(observed);
      backendReport.byStatus[res.status] = (backendReport.byStatus[res.status] ?? 0) + 1;
      if (observed.code) backendReport.byCode[observed.code] = (backendReport.byCode[observed.code] ?? 0) + 1;
      if (res.status >= 500 || observed.code === "INTERNAL_SERVER_ERROR") backendReport.serverErrors++;
      if (observed.leaked.length > 0) backendReport.leaks++;
      if (observed.status !== hostile.status || observed.code !== hostile.code) backendReport.unexpected.push(observed);

      expect(res.status, res.text.slice(0, 300)).not.toBe(500);
      expect(observed.code, res.text.slice(0, 300)).not.toBe("INTERNAL_SERVER_ERROR");
      expect(observed.leaked, res.text.slice(0, 300)).toEqual([]);
      expect({ status: observed.status, code: observed.code }, res.text.slice(0, 300)).toEqual({ status: hostile.status, code: hostile.code });
      if (hostile.code) expect(res.json?.data ?? null, "a refused request returns no data").toBeNull();
      if (hostile.message) expect(observed.message).toMatch(hostile.message);
    });
  }

  it("left the target's balances and every ledger unchanged, and the audit clean", async () => {
    const after = await balances(database, fixture.target);
    const targetRowsAfter = await ledgerRows(database, fixture.target);
    const allRowsAfter = await ledgerRows(database);
    const audit = await auditLedger(database.db);
    backendReport.target = {
      balancesBefore,
      balancesAfter: after,
      targetLedgerRowsBefore: targetRowsBefore,
      targetLedgerRowsAfter: targetRowsAfter,
      allLedgerRowsBefore: allRowsBefore,
      allLedgerRowsAfter: allRowsAfter,
      auditOk: audit.ok,
    };
    expect(after).toEqual(balancesBefore);
    expect(targetRowsAfter).toBe(targetRowsBefore);
    expect(allRowsAfter).toBe(allRowsBefore);
    expect(audit.mismatches).toEqual([]);
    expect(backendReport.covered + backendReport.notCovered.length).toBe(CASES.length);
  });

  it("accepts odd but valid strings, charges each call once and stores them verbatim", async () => {
    const spender = await fundedSubscription(database, SPENDER, { ai: 1000, leads: 1000, skiptrace: 1000 });
    const ownerToken = await mintToken({ sub: SPENDER, secret: SECRET, issuer: ISSUER, audience: AUDIENCE });
    const gql = (query: string, variables: Record<string, unknown>, token = ownerToken) =>
      send(server.url, { query, variables, authorization: `Bearer ${token}` }, tokens);
    const rowsBefore = await ledgerRows(database, spender);
    const charged: Record<string, number> = {};
    let requests = 0;
    let meteredCalls = 0;
    let granted = 0;
    let grants = 0;
    let storedVerbatim = 0;

    const metered = async (query: string, input: unknown) => {
      const res = await gql(query, { s: spender, i: input });
      requests++;
      expect(res.status, res.text.slice(0, 300)).toBe(200);
      expect(res.json.errors).toBeUndefined();
      const charges = res.json.extensions.credits.charges as { type: string; charged: number; refunded: number }[];
      expect(charges).toHaveLength(1);
      expect(charges[0].refunded).toBe(0);
      charged[charges[0].type] = (charged[charges[0].type] ?? 0) + charges[0].charged;
      meteredCalls++;
    };

    for (const text of Object.values(INJECTION_STRINGS)) {
      await metered(`mutation ($s: ID!, $i: AiTaskInput!) { runAiTask(subscriptionId: $s, input: $i) { output } }`, { prompt: text });
      await metered(`mutation ($s: ID!, $i: LeadSearchInput!) { searchLeads(subscriptionId: $s, input: $i) { total } }`, { query: text, location: text, limit: 1 });
      await metered(`mutation ($s: ID!, $i: MlsSearchInput!) { searchMls(subscriptionId: $s, input: $i) { listings { mlsId } } }`, { area: text, limit: 1 });
      await metered(`mutation ($s: ID!, $i: SkipTraceInput!) { skipTrace(subscriptionId: $s, input: $i) { matches { recordIndex } } }`, {
        records: [{ firstName: text, lastName: text, address: text, city: text, state: text, zip: text }],
      });
      await metered(`mutation ($s: ID!, $i: PhoneLookupInput!) { lookupPhones(subscriptionId: $s, input: $i) { results { phone valid } } }`, { phones: [text] });

      if (hasCoordinate(server.app.schema, "Mutation.grantCredits")) {
        const res = await gql(
          `mutation ($input: GrantCreditsInput!) { grantCredits(input: $input) { reason amount } }`,
          { input: { subscriptionId: spender, type: "ai", amount: 1, reason: text } },
          tokens.admin,
        );
        requests++;
        expect(res.status, res.text.slice(0, 300)).toBe(200);
        expect(res.json.data.grantCredits.reason).toBe(text.trim());
        granted += 1;
        grants++;
        storedVerbatim++;
      }
      if (hasCoordinate(server.app.schema, "Mutation.createSubscription")) {
        // An ownerId is a user id, kept verbatim and never trimmed (a padded one is refused: src/util/text.ts).
        const ownerId = text.trim();
        const res = await gql(
          `mutation ($input: CreateSubscriptionInput!) { createSubscription(input: $input) { id ownerId plan } }`,
          { input: { ownerId, plan: text } },
          tokens.admin,
        );
        requests++;
        expect(res.status, res.text.slice(0, 300)).toBe(200);
        const read = await gql(`query ($id: ID!) { subscription(id: $id) { ownerId plan } }`, { id: res.json.data.createSubscription.id }, tokens.admin);
        expect(read.json.data.subscription).toEqual({ ownerId, plan: text.trim() });
        storedVerbatim++;
      }
      if (hasCoordinate(server.app.schema, "Query.creditLedger")) {
        const res = await gql(
          `query ($s: ID!, $f: LedgerFilter) { creditLedger(subscriptionId: $s, filter: $f) { edges { node { id } } } }`,
          { s: spender, f: { operation: text } },
        );
        requests++;
        expect(res.status, res.text.slice(0, 300)).toBe(200);
        expect(res.json.data.creditLedger.edges).toEqual([]);
      }
    }

    // An Idempotency-Key made of SQL is only a key: the retry replays, nothing is charged twice.
    const idempotent = { query: `mutation ($s: ID!) { runAiTask(subscriptionId: $s, input: { prompt: "once" }) { output } }`, variables: { s: spender } };
    const key = INJECTION_STRINGS["SQL quote"].replace("credit_ledger", "idempotency_keys");
    const first = await send(server.url, { ...idempotent, authorization: `Bearer ${ownerToken}`, headers: { "idempotency-key": key } }, tokens);
    const retry = await send(server.url, { ...idempotent, authorization: `Bearer ${ownerToken}`, headers: { "idempotency-key": key } }, tokens);
    requests += 2;
    expect(first.status, first.text.slice(0, 300)).toBe(200);
    expect(retry.status, retry.text.slice(0, 300)).toBe(200);
    expect(retry.json.extensions.credits.charges[0]).toMatchObject({ replayed: true, entryId: first.json.extensions.credits.charges[0].entryId });
    charged.ai = (charged.ai ?? 0) + first.json.extensions.credits.charges[0].charged;
    meteredCalls++;

    // A request id that is not a plain token is replaced, never stored or echoed.
    const hostileRequestId = INJECTION_STRINGS["SQL quote"];
    const res = await fetch(`${server.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-request-id": hostileRequestId },
      body: JSON.stringify({ query: "{ creditTypes { name } }" }),
    });
    requests++;
    expect(res.status).toBe(200);
    expect(res.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);

    const after = await balances(database, spender);
    expect(after).toEqual({ ai: 1000 - (charged.ai ?? 0) + granted, leads: 1000 - (charged.leads ?? 0), skiptrace: 1000 - (charged.skiptrace ?? 0) });
    expect(await ledgerRows(database, spender)).toBe(rowsBefore + meteredCalls + grants);
    const audit = await auditLedger(database.db);
    expect(audit.mismatches).toEqual([]);
    // The tables the injection strings name are all still there.
    expect(await ledgerRows(database)).toBeGreaterThan(0);
    backendReport.accepted = { requests, charged, granted, storedVerbatim, auditOk: audit.ok };
  });
});
