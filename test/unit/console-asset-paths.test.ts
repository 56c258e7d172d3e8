/**
 * /console/assets/ serves the build's hashed files only: a path that decodes to anything else
 * (`..%2findex.html`, a `/` or `\` inside the name, a `.` or `..` segment) is a 404, never index.html
 * cached for a year as an asset, nor a file outside the build. Found by an outside audit:
 * `/console/assets/..%2findex.html` answered the raw index.html (without the live-balance tag) with
 * `cache-control: immutable`.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ApolloServer } from "@apollo/server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { consoleRoute } from "../../src/console/console-route.js";
import { createHttpServer, type RunningHttpServer } from "../../src/http/http-server.js";
import { createLogger } from "../../src/observability/logger.js";

const INDEX = `<!doctype html><html><head><title>console</title></head><body><div id="root"></div></body></html>`;
const SCRIPT = "console.log('app');";
const LIVE_TAG = '<meta name="graphql-credits-live" content="creditBalanceChanged" />';

/** A raw request: the path goes out exactly as written (like curl --path-as-is). */
function get(base: string, path: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, method: "GET" }, (res) => {
      let body = "";
      res.on("data", (chunk) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("the console's assets folder", () => {
  let root: string;
  let server: RunningHttpServer;
  let base: string;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), "console-assets-"));
    const dist = join(root, "dist");
    mkdirSync(join(dist, "assets", "nested"), { recursive: true });
    writeFileSync(join(dist, "index.html"), INDEX);
    writeFileSync(join(dist, "robots.txt"), "User-agent: *");
    writeFileSync(join(dist, "assets", "index-Ab12Cd34.js"), SCRIPT);
    writeFileSync(join(dist, "assets", "nested", "deep-Ab12Cd34.js"), SCRIPT);
    writeFileSync(join(root, "package.json"), "{}");
    server = createHttpServer({
      apollo: {} as ApolloServer<object>,
      context: async () => ({}),
      routes: {},
      prefixRoutes: { "/console": consoleRoute({ distDir: dist, liveBalances: true }) },
      maxBodyBytes: 1000,
      logger: createLogger("silent"),
    });
    base = await server.listen(0, "127.0.0.1");
  });
  afterAll(async () => {
    await server.close();
    rmSync(root, { recursive: true, force: true });
  });

  it("answers a path that decodes out of the assets folder with a 404, never index.html", async () => {
    for (const path of [
      "/console/assets/..%2findex.html",
      "/console/assets/..%2Findex.html",
      "/console/assets/%2e%2e%2findex.html",
      "/console/assets/%2E%2E%2Findex.html",
      "/console/assets/..%5cindex.html",
      "/console/assets/.%2findex-Ab12Cd34.js",
      "/console/assets/..%2frobots.txt",
      "/console/assets/..%2f..%2fpackage.json",
      "/console/assets/nested%2fdeep-Ab12Cd34.js",
      "/console/assets/nested/deep-Ab12Cd34.js",
      "/console/assets/",
    ]) {
      const res = await get(base, path);
      expect(res.status, path).toBe(404);
      expect(res.headers["cache-control"], path).toBe("no-cache");
      expect(res.body, path).not.toContain("<html");
      expect(res.body, path).not.toContain("{}");
    }
  });

  it("still serves a real asset for a year, and the app (with its live tag) elsewhere", async () => {
    const script = await get(base, "/console/assets/index-Ab12Cd34.js");
    expect(script).toMatchObject({ status: 200, body: SCRIPT });
    expect(script.headers["cache-control"]).toBe("public, max-age=31536000, immutable");
    // A path that decodes to index.html outside assets/ is an app path: the page with its live tag, never cached.
    for (const path of ["/console/index.html", "/console/x%2f..%2findex.html", "/console/%2e%2findex.html"]) {
      const res = await get(base, path);
      expect(res.status, path).toBe(200);
      expect(res.headers["cache-control"], path).toBe("no-cache");
      expect(res.body, path).toContain(LIVE_TAG);
    }
  });
});
