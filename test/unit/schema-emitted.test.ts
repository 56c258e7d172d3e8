import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { buildBaseSchema, printSchemaSdl } from "../../src/graphql/build-schema.js";

describe("emitted schema", () => {
  it("schema/schema.graphql is what the code emits (run `npm run schema:emit` after changing the schema)", () => {
    const committed = readFileSync("schema/schema.graphql", "utf8");
    expect(printSchemaSdl(buildBaseSchema())).toBe(committed);
  });

  // The contract lives in ../shared beside the repository (as in CI); a bare clone elsewhere has none.
  const contractCheck = "../shared/contract/check.mjs";
  it.skipIf(!existsSync(contractCheck))("is a superset of the public contract with every @credits use as written there", () => {
    const output = execFileSync(process.execPath, [contractCheck, "schema/schema.graphql"], {
      encoding: "utf8",
    }).trim();
    expect(output.split("\n").at(-1)).toMatch(/^0 contract breaks, 0 undocumented/);
  });
});
