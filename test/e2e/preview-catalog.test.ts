/**
 * creditTypes and creditCatalog: public (no token), and generated from the schema's own @credits
 * uses, so the catalog lists exactly the metered fields the emitted SDL declares.
 */
import { readFileSync } from "node:fs";
import { Kind, parse, valueFromASTUntyped, type ObjectTypeDefinitionNode } from "graphql";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CREDIT_TYPES } from "../../src/credits/credit-types.js";
import { ESTIMATORS } from "../../src/credits/estimators/registry.js";
import { createPgliteDatabase, type TestDatabase } from "../helpers/databases.js";
import { startTestServer, type TestServer } from "../helpers/test-app.js";
import { sendTyped } from "../helpers/typed-gql.js";
import { CreditCatalogDocument, CreditTypesDocument } from "../generated/graphql.js";

/** Every `@credits` use in the committed SDL: coordinate → directive arguments. */
function creditsUsesInSdl(): Map<string, { type: string; amount?: number; estimator?: string }> {
  const uses = new Map<string, { type: string; amount?: number; estimator?: string }>();
  const document = parse(readFileSync("schema/schema.graphql", "utf8"));
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.OBJECT_TYPE_DEFINITION) continue;
    for (const field of (definition as ObjectTypeDefinitionNode).fields ?? []) {
      const directive = field.directives?.find((d) => d.name.value === "credits");
      if (!directive) continue;
      const args = Object.fromEntries((directive.arguments ?? []).map((a) => [a.name.value, valueFromASTUntyped(a.value)]));
      uses.set(`${definition.name.value}.${field.name.value}`, args as { type: string; amount?: number; estimator?: string });
    }
  }
  return uses;
}

// The catalog reads no tables, so one backend is enough.
describe("credit catalog (public)", () => {
  let database: TestDatabase;
  let server: TestServer;

  beforeAll(async () => {
    database = await createPgliteDatabase();
    server = await startTestServer({ database });
  });
  afterAll(async () => {
    await server?.close();
    await database?.dispose();
  });

  it("creditTypes lists every credit type without a token", async () => {
    const response = await sendTyped(server, CreditTypesDocument, {});
    expect(response.status).toBe(200);
    expect(response.body.errors).toBeUndefined();
    expect(response.body.data!.creditTypes).toEqual(CREDIT_TYPES.map(({ name, description }) => ({ name, description })));
    // DESIGN.md's three types are always there; a credit type added to CREDIT_TYPES needs no edit here.
    expect(response.body.data!.creditTypes.map((t) => t.name)).toEqual(expect.arrayContaining(["ai", "leads", "skiptrace"]));
  });

  it("creditCatalog is exactly the schema's @credits uses, each with its estimator described", async () => {
    const response = await sendTyped(server, CreditCatalogDocument, {});
    expect(response.status).toBe(200);
    expect(response.body.errors).toBeUndefined();
    const catalog = response.body.data!.creditCatalog;

    const uses = creditsUsesInSdl();
    // Counted, not hard-coded: adding a metered operation (docs/adding-an-operation.md) needs no edit here.
    expect(uses.size).toBeGreaterThanOrEqual(6);
    expect(uses.size).toBe(server.app.services.meteredFields.length);
    expect(catalog.map((c) => c.operation).sort()).toEqual([...uses.keys()].sort());
    for (const entry of catalog) {
      const use = uses.get(entry.operation)!;
      expect(entry.type).toBe(use.type);
      expect(entry.amount).toBe(use.amount ?? null);
      expect(entry.estimator).toBe(use.estimator ?? null);
      // The description says what the field does and how the estimator prices it.
      expect(entry.description).toContain(`Holds ${ESTIMATORS.get(entry.estimator!)!.description}.`);
      // Sentences, each ended (they ran together: "… asked for) Settles at …").
      expect(entry.description).not.toMatch(/[^.] [A-Z][a-z]+ at /);
    }
    expect(catalog.find((c) => c.operation === "Mutation.runAiTask")).toMatchObject({ type: "ai", estimator: "ai", amount: null });
    expect(catalog.find((c) => c.operation === "Mutation.lookupPhones")).toMatchObject({ type: "skiptrace", estimator: "phone" });
  });
});
