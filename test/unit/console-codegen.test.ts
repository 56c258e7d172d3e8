/**
 * The console's typed documents and its TypeScript: console/src/generated is what
 * `npm run console:codegen` makes from the emitted schema (so a schema change that breaks the
 * console's operations fails here), and the app type-checks with its own tsconfig.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { generate } from "@graphql-codegen/cli";
import { describe, expect, it } from "vitest";
import config, { CONSOLE_CODEGEN_OUTPUT } from "../../console/codegen.js";

describe("the console's code", () => {
  it(`${CONSOLE_CODEGEN_OUTPUT} is what \`npm run console:codegen\` generates`, async () => {
    const outputs = await generate({ ...config, silent: true }, false);
    expect(outputs.map((o: { filename: string }) => o.filename)).toEqual([CONSOLE_CODEGEN_OUTPUT]);
    const committed = readFileSync(CONSOLE_CODEGEN_OUTPUT, "utf8");
    expect(outputs[0].content === committed, "console/src/generated is stale: run `npm run console:codegen`").toBe(true);
  });

  it("type-checks with console/tsconfig.json", () => {
    const run = spawnSync("node_modules/.bin/tsc", ["-p", "console/tsconfig.json"], { encoding: "utf8" });
    expect(run.stdout + run.stderr).toBe("");
    expect(run.status).toBe(0);
  }, 60_000);
});
