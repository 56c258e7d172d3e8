/**
 * The typed client of docs/live-balance.md ("A typed client") as a client's developer builds it, so
 * that the docs' client cannot stop compiling again:
 * - the package is built as `npm pack` builds it (tsconfig.build.json, into a temporary
 *   node_modules/graphql-credits with the other files `npm pack` packs, this package.json among
 *   them), and `graphql-credits/client` resolves through "exports", in Node and in TypeScript;
 * - docs/client/codegen.ts, as it is, generates from the packed schema
 *   (node_modules/graphql-credits/schema/schema.graphql: a production server has no introspection)
 *   and docs/client/credits.graphql (the doc's operations), in a client laid out as its comment says,
 *   and takes its schema from CREDITS_SCHEMA, else CREDITS_URL, else a local server;
 * - the generated code and docs/client/example.ts type-check with tsc, with module resolution
 *   "bundler" and "nodenext" (urql, graphql-ws and ws typings from this project's node_modules);
 * - the client's CreditCharge and CreditsExtension are exactly the server's ChargeRecord and
 *   CreditsExtension (checked on the built package there, and below for `npm run typecheck`);
 * - the doc quotes docs/client/example.ts as it is, and the scalars of codegen.ts are CREDITS_SCALARS
 *   and cover every custom scalar of the schema.
 * test/e2e/client-example.test.ts runs the example against a server.
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { generate } from "@graphql-codegen/cli";
import { buildSchema, isScalarType, isSpecifiedScalarType } from "graphql";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import config from "../../docs/client/codegen.js";
import { layOutDocsClient } from "../helpers/docs-client.js";
import { CREDITS_SCALARS, remainingCredits, type CreditCharge, type CreditsExtension } from "../../src/client/credits-extension.js";
import type { ChargeRecord, CreditsExtension as ServerCreditsExtension } from "../../src/credits/charge-collector.js";

const ROOT = resolve(import.meta.dirname, "../..");
const TSC = join(ROOT, "node_modules/.bin/tsc");
const SCHEMA = join(ROOT, "schema/schema.graphql");
/** Where a client finds the schema the package ships (what the doc tells it to generate from). */
const PACKED_SCHEMA = "node_modules/graphql-credits/schema/schema.graphql";
/**
 * What the doc has the client install (codegen's plugins, which it loads from the client's directory,
 * and what the example imports), linked from this project's node_modules into the temporary client.
 */
const CLIENT_PACKAGES = [
  "@graphql-codegen/typescript-operations",
  "@graphql-codegen/typed-document-node",
  "graphql",
  "@graphql-typed-document-node/core",
  "@urql/core",
  "graphql-ws",
  "ws",
  "@types/node",
  "@types/ws",
];

// Checked by `npm run typecheck` (tsc -p .): the client's types are the server's, in both directions.
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const chargeIsTheServers: Equal<CreditCharge, ChargeRecord> = true;
const extensionIsTheServers: Equal<CreditsExtension, ServerCreditsExtension> = true;

/** The same check on the built package, as a client's tsc sees it. */
const DRIFT_CHECK = `import type { ChargeRecord, CreditsExtension as ServerExtension } from "graphql-credits";
import type { CreditCharge, CreditsExtension } from "graphql-credits/client";
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
export const charge: Equal<CreditCharge, ChargeRecord> = true;
export const extension: Equal<CreditsExtension, ServerExtension> = true;
`;

function tsconfig(module: string, moduleResolution: string): string {
  return JSON.stringify({
    compilerOptions: {
      target: "ES2022",
      module,
      moduleResolution,
      strict: true,
      // TypeScript 7's `tsc --init` sets it; the example must compile under it (an outside audit).
      exactOptionalPropertyTypes: true,
      noEmit: true,
      esModuleInterop: true,
      skipLibCheck: true,
      types: ["node"],
    },
    include: ["src"],
  });
}

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): { status: number | null; output: string } {
  const done = spawnSync(command, args, { cwd, encoding: "utf8", env });
  return { status: done.status, output: `${done.stdout ?? ""}${done.stderr ?? ""}${done.error ? String(done.error) : ""}` };
}

/** The files `npm pack` would pack (package.json "files"), without running prepack's build. */
function packedFiles(): string[] {
  const pack = spawnSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: ROOT, encoding: "utf8" });
  if (pack.status !== 0) throw new Error(`npm pack --dry-run failed:\n${pack.stdout}${pack.stderr}`);
  const [{ files }] = JSON.parse(pack.stdout) as [{ files: { path: string }[] }];
  return files.map((f) => f.path);
}

describe("the typed client of docs/live-balance.md", () => {
  let dir: string;
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { exports: Record<string, { types: string; import: string }> };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "credits-client-docs-"));
    // The package as `npm pack` builds it (prepack: npm run build:lib), installed in the client.
    const installed = join(dir, "node_modules/graphql-credits");
    mkdirSync(installed, { recursive: true });
    // What it packs besides dist/ (built below, whatever this checkout's dist/ holds).
    for (const file of packedFiles().filter((f) => !f.startsWith("dist/"))) {
      mkdirSync(dirname(join(installed, file)), { recursive: true });
      copyFileSync(join(ROOT, file), join(installed, file));
    }
    const build = run(TSC, ["-p", "tsconfig.build.json", "--outDir", join(installed, "dist")], ROOT);
    if (build.status !== 0) throw new Error(`tsc -p tsconfig.build.json failed:\n${build.output}`);
    // The client: its packages, its operations and code under src/.
    layOutDocsClient(dir, CLIENT_PACKAGES);
    writeFileSync(join(dir, "src/drift-check.ts"), DRIFT_CHECK);
    writeFileSync(join(dir, "tsconfig.bundler.json"), tsconfig("ESNext", "Bundler"));
    writeFileSync(join(dir, "tsconfig.nodenext.json"), tsconfig("NodeNext", "NodeNext"));
  }, 60_000);

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('exports "graphql-credits/client" from the built package', () => {
    expect(pkg.exports["./client"]).toEqual({ types: "./dist/client/credits-extension.d.ts", import: "./dist/client/credits-extension.js" });
    for (const entry of Object.values(pkg.exports)) {
      for (const target of [entry.types, entry.import]) expect(existsSync(join(dir, "node_modules/graphql-credits", target)), target).toBe(true);
    }
    // Self-contained: the client module imports nothing (it can be copied into a client as it is).
    const source = readFileSync(join(ROOT, "src/client/credits-extension.ts"), "utf8");
    expect(source).not.toMatch(/\bfrom\s+["']|\bimport\s*\(|\brequire\(/);
    // And Node resolves it through "exports", as a client's code would.
    const probe = run(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        'import { CREDITS_SCALARS, remainingCredits } from "graphql-credits/client";' +
          'console.log(JSON.stringify({ CREDITS_SCALARS, left: remainingCredits({ extensions: { credits: { charges: [], remaining: { s1: { leads: 7 } } } } }, "s1", "leads") }));',
      ],
      dir,
    );
    expect(probe.status, probe.output).toBe(0);
    expect(JSON.parse(probe.output)).toEqual({ CREDITS_SCALARS, left: 7 });
  });

  it("docs/client/codegen.ts generates typed documents from the packed schema, and they and docs/client/example.ts type-check", async () => {
    expect(readFileSync(join(dir, PACKED_SCHEMA), "utf8")).toBe(readFileSync(SCHEMA, "utf8"));
    const outputs: { filename: string; content: string }[] = await generate({ ...config, schema: PACKED_SCHEMA, cwd: dir, silent: true }, false);
    expect(outputs.map((o) => o.filename)).toEqual(["src/generated/credits.ts"]);
    for (const { filename, content } of outputs) {
      mkdirSync(dirname(join(dir, filename)), { recursive: true });
      writeFileSync(join(dir, filename), content);
    }
    expect(outputs[0].content).toContain("export const SearchLeadsDocument");
    expect(outputs[0].content).toContain("export const LeadsBalanceDocument");
    expect(outputs[0].content).toContain("export const LeadsBalanceNowDocument");
    for (const project of ["tsconfig.bundler.json", "tsconfig.nodenext.json"]) {
      const check = run(TSC, ["-p", project], dir);
      expect(check.output, project).toBe("");
      expect(check.status, project).toBe(0);
    }
  }, 60_000);

  it("docs/client/codegen.ts reads the schema from CREDITS_SCHEMA, else CREDITS_URL, else a local server", () => {
    const schemaWith = (env: Record<string, string>): string => {
      const { CREDITS_SCHEMA: _schema, CREDITS_URL: _url, ...rest } = process.env;
      const probe = run(
        process.execPath,
        ["--import", "tsx", "--input-type=module", "-e", `const { default: config } = await import(${JSON.stringify(join(ROOT, "docs/client/codegen.ts"))}); console.log(config.schema);`],
        ROOT,
        { ...rest, ...env },
      );
      expect(probe.status, probe.output).toBe(0);
      return probe.output.trim();
    };
    expect(schemaWith({ CREDITS_SCHEMA: PACKED_SCHEMA, CREDITS_URL: "https://credits.example.com/graphql" })).toBe(PACKED_SCHEMA);
    expect(schemaWith({ CREDITS_URL: "https://credits.example.com/graphql" })).toBe("https://credits.example.com/graphql");
    expect(schemaWith({})).toBe("http://localhost:4000/graphql");
  }, 30_000);

  it("maps every custom scalar of the schema as CREDITS_SCALARS does", () => {
    const generates = Object.values(config.generates) as { config: { scalars: Record<string, string> } }[];
    expect(generates.map((g) => g.config.scalars)).toEqual([CREDITS_SCALARS]);
    const schema = buildSchema(readFileSync(SCHEMA, "utf8"));
    const custom = Object.values(schema.getTypeMap())
      .filter((t) => isScalarType(t) && !isSpecifiedScalarType(t))
      .map((t) => t.name)
      .sort();
    expect(Object.keys(CREDITS_SCALARS).sort()).toEqual(custom);
  });

  it("docs/live-balance.md quotes docs/client/example.ts as it is", () => {
    const doc = readFileSync(join(ROOT, "docs/live-balance.md"), "utf8");
    const section = doc.slice(doc.indexOf("## A typed client"));
    const block = /```ts\n([\s\S]*?)```/.exec(section);
    expect(block?.[1]).toBe(readFileSync(join(ROOT, "docs/client/example.ts"), "utf8"));
    for (const file of ["client/codegen.ts", "client/credits.graphql", "client/example.ts"]) expect(section).toContain(file);
    // How to generate without introspection, and where the schema's file is.
    for (const text of ["CREDITS_SCHEMA", "CREDITS_URL", PACKED_SCHEMA]) expect(section).toContain(text);
    expect(chargeIsTheServers && extensionIsTheServers).toBe(true);
  });
});
