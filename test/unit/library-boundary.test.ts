/**
 * The credits core is what the public entry (src/library/index.ts) reaches through its imports. None
 * of it may import the server's app, configuration or context (DESIGN.md, convention 10), nor the
 * benchmark or the tests (convention 11). The walk follows every relative import, so a core file that
 * starts importing the server fails here, naming the chain.
 */
import { readFileSync } from "node:fs";
import { dirname, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../..");
const FORBIDDEN = [/^src\/app\//, /^src\/config\//, /^src\/graphql\/context\.ts$/, /^bench\//, /^test\//];

function relativeImports(file: string): string[] {
  const text = readFileSync(resolve(ROOT, file), "utf8");
  const found: string[] = [];
  for (const m of text.matchAll(/(?:import|export)\s[^;]*?from\s+"(\.{1,2}\/[^"]+)"|import\(\s*"(\.{1,2}\/[^"]+)"\s*\)/g)) {
    const spec = (m[1] ?? m[2]).replace(/\.js$/, ".ts");
    found.push(relative(ROOT, resolve(ROOT, dirname(file), spec)));
  }
  return found;
}

/** Every file the entry reaches, with the chain that reached it. */
export function coreFiles(entry = "src/library/index.ts"): Map<string, string[]> {
  const reached = new Map<string, string[]>([[entry, [entry]]]);
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.shift()!;
    for (const next of relativeImports(file)) {
      if (reached.has(next)) continue;
      reached.set(next, [...reached.get(file)!, next]);
      queue.push(next);
    }
  }
  return reached;
}

describe("the credits core (everything the public entry imports)", () => {
  const core = coreFiles();

  it("reaches the charge path, the ledger, rate limits, idempotency and recovery", () => {
    for (const dir of ["src/credits/", "src/ledger/", "src/ratelimit/", "src/idempotency/", "src/recovery/", "src/db/", "src/errors/"]) {
      expect([...core.keys()].some((f) => f.startsWith(dir)), dir).toBe(true);
    }
  });

  it("imports nothing of the server's app, configuration or context, nor bench/ or test/", () => {
    const offending = [...core.entries()].filter(([file]) => FORBIDDEN.some((re) => re.test(file))).map(([, chain]) => chain.join(" → "));
    expect(offending).toEqual([]);
  });

  it("no file in the core directories imports the app, configuration or context (grep)", () => {
    const dirs = ["src/credits", "src/ledger", "src/ratelimit", "src/idempotency", "src/recovery", "src/db", "src/errors", "src/library", "src/subscriptions"];
    const offending = [...core.keys()]
      .filter((f) => dirs.some((d) => f.startsWith(`${d}/`)))
      .filter((f) => /from "(\.\.\/)+(app|config)\/|from "(\.\.\/)+graphql\/context\.js"/.test(readFileSync(resolve(ROOT, f), "utf8")));
    expect(offending).toEqual([]);
  });
});
