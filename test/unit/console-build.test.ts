/**
 * The console's build at start: a missing or stale build (a source changed after it) is rebuilt
 * with Vite, a fresh one is left alone, and a change to the app's sources is picked up. Runs the
 * real build script on a copy of console/ inside the repository (so the copy resolves the
 * project's node_modules).
 */
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { consoleBuildState, ensureConsoleBuilt } from "../../src/console/build-console.js";
import { CONSOLE_DIR, CONSOLE_INPUTS } from "../../src/console/console-paths.js";
import { createLogger } from "../../src/observability/logger.js";

const copy = join(process.cwd(), "test-results", `console-copy-${process.pid}`);
const dist = join(copy, "dist");
const logger = createLogger("silent");

function assetsContaining(text: string): string[] {
  return readdirSync(join(dist, "assets")).filter((name) => readFileSync(join(dist, "assets", name), "utf8").includes(text));
}

describe("the console build at start", () => {
  afterAll(() => rmSync(copy, { recursive: true, force: true }));

  it("is stale when dist is missing or older than any input, fresh otherwise", async () => {
    mkdirSync(copy, { recursive: true });
    for (const input of CONSOLE_INPUTS) cpSync(join(CONSOLE_DIR, input), join(copy, input), { recursive: true });
    expect(await consoleBuildState(copy, dist)).toEqual({ stale: true, reason: "console/dist is missing" });

    mkdirSync(dist, { recursive: true });
    writeFileSync(join(dist, "index.html"), "<html></html>");
    const future = new Date(Date.now() + 60_000);
    utimesSync(join(dist, "index.html"), future, future);
    expect(await consoleBuildState(copy, dist)).toEqual({ stale: false });

    const later = new Date(Date.now() + 120_000);
    utimesSync(join(copy, "src", "App.tsx"), later, later);
    expect(await consoleBuildState(copy, dist)).toEqual({ stale: true, reason: "console/src changed since the last build" });
    utimesSync(join(copy, "src", "App.tsx"), new Date(), new Date());
    expect(await consoleBuildState(copy, dist)).toEqual({ stale: false });
    utimesSync(join(copy, "vite.config.ts"), later, later);
    expect(await consoleBuildState(copy, dist)).toEqual({ stale: true, reason: "console/vite.config.ts changed since the last build" });
    utimesSync(join(copy, "vite.config.ts"), new Date(), new Date());
    rmSync(dist, { recursive: true });
  });

  it("builds a missing console, picks up a changed source, and leaves a fresh build alone", async () => {
    expect(await ensureConsoleBuilt(logger, copy, dist)).toBe(true);
    expect(readFileSync(join(dist, "index.html"), "utf8")).toContain('src="/console/assets/');
    expect(assetsContaining("Paste a token (JWT) to sign in")).toHaveLength(1);
    expect(await consoleBuildState(copy, dist)).toEqual({ stale: false });

    // A change to the app's sources, as a developer makes it.
    const signIn = join(copy, "src", "pages", "SignIn.tsx");
    writeFileSync(signIn, readFileSync(signIn, "utf8").replace("Paste a token (JWT) to sign in", "Paste your token (JWT) here"));
    expect((await consoleBuildState(copy, dist)).stale).toBe(true);
    expect(await ensureConsoleBuilt(logger, copy, dist)).toBe(true);
    expect(assetsContaining("Paste your token (JWT) here")).toHaveLength(1);
    expect(assetsContaining("Paste a token (JWT) to sign in")).toHaveLength(0);
    // No staging folder is left behind.
    expect(readdirSync(copy).filter((name) => name.startsWith(".dist"))).toEqual([]);

    const builtAt = statSync(join(dist, "index.html")).mtimeMs;
    expect(await ensureConsoleBuilt(logger, copy, dist)).toBe(true);
    expect(statSync(join(dist, "index.html")).mtimeMs).toBe(builtAt);
    expect(existsSync(join(dist, "index.html"))).toBe(true);
  }, 120_000);
});
