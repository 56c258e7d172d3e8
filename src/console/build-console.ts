/**
 * The console is built at server start, never in the request path: when console/dist is missing or
 * older than any of its inputs (console/src, index.html, the Vite config), `node console/build.mjs`
 * runs Vite's build() in a child process (its memory goes back when it ends, and the server's heap
 * stays what it serves), logging progress. A failed build does not stop the server: the API works,
 * and /console says what is missing.
 */
import { spawn } from "node:child_process";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import { CONSOLE_DIR, CONSOLE_DIST_DIR, CONSOLE_INPUTS } from "./console-paths.js";

/** Newest modification time (ms) of a file or of everything under a folder; 0 when it does not exist. */
async function newestMtime(path: string): Promise<number> {
  let info;
  try {
    info = await stat(path);
  } catch {
    return 0;
  }
  if (!info.isDirectory()) return info.mtimeMs;
  let newest = info.mtimeMs;
  for (const entry of await readdir(path)) newest = Math.max(newest, await newestMtime(join(path, entry)));
  return newest;
}

export type ConsoleBuildState = { stale: false } | { stale: true; reason: string };

/** Whether dist must be (re)built, and why. */
export async function consoleBuildState(consoleDir = CONSOLE_DIR, distDir = CONSOLE_DIST_DIR): Promise<ConsoleBuildState> {
  const built = await newestMtime(join(distDir, "index.html"));
  if (built === 0) return { stale: true, reason: "console/dist is missing" };
  for (const input of CONSOLE_INPUTS) {
    if ((await newestMtime(join(consoleDir, input))) > built) return { stale: true, reason: `console/${input} changed since the last build` };
  }
  return { stale: false };
}

/** Runs console/build.mjs; resolves when it ends (true when it succeeded). */
function runBuild(logger: Logger, consoleDir: string): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(consoleDir, "build.mjs")], { cwd: consoleDir, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const collect = (chunk: Buffer) => {
      output += chunk.toString();
      for (const line of chunk.toString().split("\n").filter((l) => l.trim())) logger.info({ component: "console" }, line.trim());
    };
    child.stdout.on("data", collect);
    child.stderr.on("data", collect);
    child.once("error", (err) => {
      logger.error({ component: "console", err }, "could not start the console build");
      resolve(false);
    });
    child.once("exit", (code) => {
      if (code !== 0) logger.error({ component: "console", code, output: output.slice(-2000) }, "console build failed");
      resolve(code === 0);
    });
  });
}

/** Builds the console when it is missing or stale. Returns whether a usable build is there afterwards. */
export async function ensureConsoleBuilt(logger: Logger, consoleDir = CONSOLE_DIR, distDir = CONSOLE_DIST_DIR): Promise<boolean> {
  const state = await consoleBuildState(consoleDir, distDir);
  if (!state.stale) return true;
  logger.info({ component: "console", reason: state.reason }, "building the console (Vite)…");
  const started = Date.now();
  const ok = await runBuild(logger, consoleDir);
  if (ok) logger.info({ component: "console", ms: Date.now() - started }, "console built");
  return ok || (await newestMtime(join(distDir, "index.html"))) > 0;
}
