import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { buildSchema, isEnumType, isInputObjectType, isInterfaceType, isObjectType, type GraphQLSchema } from "graphql";
import { describe, expect, it } from "vitest";
import { buildBaseSchema, printSchemaSdl } from "../../src/graphql/build-schema.js";

/**
 * A break against the current contract that is a change next.graphql plans (e.g. Int → SafeInt for
 * sums): the emitted field has exactly the type next.graphql gives it.
 */
function plannedByNext(line: string, next: GraphQLSchema): boolean {
  const match = /^FIELD_CHANGED_KIND: (\w+)\.(\w+) changed type from \S+ to (\S+)\.$/.exec(line);
  if (!match) return false;
  const type = next.getType(match[1]);
  const field = type && isObjectType(type) ? type.getFields()[match[2]] : undefined;
  return field !== undefined && String(field.type) === match[3];
}

/** Every type, field, argument and enum value of a schema without a description (root types aside). */
function undescribed(schema: GraphQLSchema): string[] {
  const roots = new Set([schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()]);
  const missing: string[] = [];
  for (const type of Object.values(schema.getTypeMap())) {
    if (type.name.startsWith("__")) continue;
    if (!type.description && !roots.has(type as never)) missing.push(type.name);
    if (isObjectType(type) || isInterfaceType(type) || isInputObjectType(type)) {
      for (const field of Object.values(type.getFields())) {
        if (!field.description) missing.push(`${type.name}.${field.name}`);
        for (const arg of "args" in field ? field.args : []) {
          if (!arg.description) missing.push(`${type.name}.${field.name}(${arg.name})`);
        }
      }
    }
    if (isEnumType(type)) {
      for (const value of type.getValues()) if (!value.description) missing.push(`${type.name}.${value.name}`);
    }
  }
  return missing;
}

describe("emitted schema", () => {
  // ORIGIN.md: "Document all credit-related fields in your schema and docs"; clients read them in
  // GraphiQL and codegen's output.
  it("describes every type, field, argument and enum value", () => {
    expect(undescribed(buildBaseSchema())).toEqual([]);
  });

  it("schema/schema.graphql is what the code emits (run `npm run schema:emit` after changing the schema)", () => {
    const committed = readFileSync("schema/schema.graphql", "utf8");
    expect(printSchemaSdl(buildBaseSchema())).toBe(committed);
  });

  // The contract lives in ../shared beside the repository (as in CI); a bare clone elsewhere has none.
  const contractCheck = "../shared/contract/check.mjs";
  it.skipIf(!existsSync(contractCheck))("is a superset of the public contract with every @credits use as written there", () => {
    let output: string;
    try {
      output = execFileSync(process.execPath, [contractCheck, "schema/schema.graphql"], { encoding: "utf8" }).trim();
    } catch (err) {
      output = String((err as { stdout?: string }).stdout ?? "").trim();
    }
    const lines = output.split("\n");
    const next = buildSchema(readFileSync("../shared/contract/next.graphql", "utf8"));
    const breaks = lines.filter((l) => /^[A-Z_]+: /.test(l) && !plannedByNext(l, next));
    expect(breaks).toEqual([]);
    expect(lines.at(-1)).toMatch(/ contract breaks, 0 undocumented/);
  });
});
