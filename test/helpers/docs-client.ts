/**
 * A client laid out as docs/live-balance.md ("A typed client") lays it out, for the tests that
 * type-check (test/unit/client-docs.test.ts) and run (test/e2e/client-example.test.ts) the docs'
 * client: the packages it installs, linked from this project's node_modules; an ES module
 * package.json; the doc's operations and example under src/.
 */
import { copyFileSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

const ROOT = resolve(import.meta.dirname, "../..");

export function layOutDocsClient(dir: string, packages: readonly string[]): void {
  for (const name of packages) {
    mkdirSync(dirname(join(dir, "node_modules", name)), { recursive: true });
    symlinkSync(join(ROOT, "node_modules", name), join(dir, "node_modules", name), "dir");
  }
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "credits-client", private: true, type: "module" }));
  mkdirSync(join(dir, "src"));
  copyFileSync(join(ROOT, "docs/client/credits.graphql"), join(dir, "src/credits.graphql"));
  copyFileSync(join(ROOT, "docs/client/example.ts"), join(dir, "src/example.ts"));
}
