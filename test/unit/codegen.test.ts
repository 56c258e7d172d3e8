import { readFileSync } from "node:fs";
import { generate } from "@graphql-codegen/cli";
import { describe, expect, it } from "vitest";
import config, { CODEGEN_OUTPUT } from "../../codegen.js";

describe("codegen", () => {
  it(`${CODEGEN_OUTPUT} is what \`npm run codegen\` generates from schema/schema.graphql and test/operations`, async () => {
    // Generated in memory (saveToFile false) with the project's own config, then compared with the committed file.
    const outputs = await generate({ ...config, silent: true }, false);
    expect(outputs.map((o: { filename: string }) => o.filename)).toEqual([CODEGEN_OUTPUT]);
    const committed = readFileSync(CODEGEN_OUTPUT, "utf8");
    // A plain equality: on a difference, run `npm run codegen` and commit the result.
    expect(outputs[0].content === committed, "test/generated is stale: run `npm run codegen`").toBe(true);
  });
});
