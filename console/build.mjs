/**
 * Builds the console (console/dist) with Vite's JS API. Run by the server at start when the build is
 * missing or stale (src/console/build-console.ts runs it in a child process, so Vite's memory is
 * returned when it ends), by the browser tests' setup, or by hand: `npm run console:build`.
 *
 * The build goes to a fresh folder that replaces dist in two renames, so a server that serves dist
 * meanwhile, or another process building at the same time, never sees half a build.
 */
import { randomBytes } from "node:crypto";
import { rename, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "vite";

// A production build whatever the caller's NODE_ENV (vitest sets "test", which would make Vite
// bundle React's development build).
process.env.NODE_ENV = "production";

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, "dist");
const tag = `${process.pid}-${randomBytes(3).toString("hex")}`;
const staging = join(root, `.dist-${tag}`);
const retired = join(root, `.dist-old-${tag}`);

const started = Date.now();
await build({
  root,
  configFile: join(root, "vite.config.ts"),
  logLevel: process.env.CONSOLE_BUILD_LOG_LEVEL ?? "warn",
  build: { outDir: staging, emptyOutDir: true },
});
await rename(dist, retired).catch((err) => {
  if (err.code !== "ENOENT") throw err;
});
await rename(staging, dist);
await rm(retired, { recursive: true, force: true });
console.log(`console built in ${Date.now() - started} ms`);
