/** Where the console's sources and build live: console/ at the top of the repository. */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The console folder, found upward from this file (src/console, or dist/src/console when compiled). */
function findConsoleDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, "console", "vite.config.ts"))) return join(dir, "console");
    dir = dirname(dir);
  }
  return join(dirname(fileURLToPath(import.meta.url)), "..", "..", "console");
}

export const CONSOLE_DIR = findConsoleDir();
export const CONSOLE_DIST_DIR = join(CONSOLE_DIR, "dist");
/** What a build reads: a change to any of these makes dist stale. */
export const CONSOLE_INPUTS = ["src", "index.html", "vite.config.ts", "tsconfig.json", "build.mjs"];
