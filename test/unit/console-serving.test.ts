/**
 * /console over HTTP, on a build made up for the test: index.html for the app's own paths (SPA
 * fallback) with no caching, hashed assets cached for a year with their content types, HEAD, 404
 * for a missing asset, 405 for other methods, 503 when nothing is built, the live-balance flag, and
 * no way out of the build folder. Paths beside /console stay the server's own.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import type { ApolloServer } from "@apollo/server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { consoleRoute } from "../../src/console/console-route.js";
import { createHttpServer, type RunningHttpServer } from "../../src/http/http-server.js";
import { createLogger } from "../../src/observability/logger.js";

const INDEX = `<!doctype html><html><head><title>console</title></head><body><div id="root"></div></body></html>`;
const SCRIPT = "console.log('app');";
const SECRET = "must never be served";

/** A raw request: the path goes out exactly as written (fetch would resolve the dots). */
function get(base: string, path: string, method = "GET"): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, method }, (res) => {
      let body = "";
      res.on("data", (chunk) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("the console route", () => {
  let root: string;
  const servers: RunningHttpServer[] = [];
  let withBuild: string;
  let live: string;
  let withoutBuild: string;

  async function serve(distDir: string, liveBalances: boolean): Promise<string> {
    const http = createHttpServer({
      apollo: {} as ApolloServer<object>,
      context: async () => ({}),
      routes: { "GET /health": ({ res }) => void res.end("ok") },
      prefixRoutes: { "/console": consoleRoute({ distDir, liveBalances }) },
      maxBodyBytes: 1000,
      logger: createLogger("silent"),
    });
    servers.push(http);
    return http.listen(0, "127.0.0.1");
  }

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), "console-route-"));
    const dist = join(root, "dist");
    mkdirSync(join(dist, "assets"), { recursive: true });
    writeFileSync(join(dist, "index.html"), INDEX);
    writeFileSync(join(dist, "assets", "index-Ab12Cd34.js"), SCRIPT);
    writeFileSync(join(dist, "assets", "index-Ef56Gh78.css"), "body{}");
    writeFileSync(join(dist, "robots.txt"), "User-agent: *");
    writeFileSync(join(root, "secret.txt"), SECRET);
    writeFileSync(join(root, "dist-other.txt"), SECRET);
    withBuild = await serve(dist, false);
    live = await serve(dist, true);
    withoutBuild = await serve(join(root, "nothing-here"), false);
  });
  afterAll(async () => {
    for (const server of servers) await server.close();
    rmSync(root, { recursive: true, force: true });
  });

  it("answers /console, /console/ and every app path with index.html, never cached", async () => {
    for (const path of ["/console", "/console/", "/console/subscriptions/7c1", "/console/stats?x=1", "/console/index.html"]) {
      const res = await get(withBuild, path);
      expect(res.status, path).toBe(200);
      expect(res.headers["content-type"]).toBe("text/html; charset=utf-8");
      expect(res.headers["cache-control"]).toBe("no-cache");
      expect(res.headers["content-security-policy"]).toContain("script-src 'self'");
      expect(res.headers["x-content-type-options"]).toBe("nosniff");
      expect(res.body).toBe(INDEX);
    }
  });

  it("serves hashed assets with their content type, cached for a year; other files are revalidated", async () => {
    const script = await get(withBuild, "/console/assets/index-Ab12Cd34.js");
    expect(script).toMatchObject({ status: 200, body: SCRIPT });
    expect(script.headers["content-type"]).toBe("text/javascript; charset=utf-8");
    expect(script.headers["cache-control"]).toBe("public, max-age=31536000, immutable");
    expect(script.headers["content-length"]).toBe(String(SCRIPT.length));
    const css = await get(withBuild, "/console/assets/index-Ef56Gh78.css");
    expect(css.headers["content-type"]).toBe("text/css; charset=utf-8");
    const robots = await get(withBuild, "/console/robots.txt");
    expect(robots.headers["content-type"]).toBe("text/plain; charset=utf-8");
    expect(robots.headers["cache-control"]).toBe("no-cache");

    const head = await get(withBuild, "/console/assets/index-Ab12Cd34.js", "HEAD");
    expect(head).toMatchObject({ status: 200, body: "" });
    expect(head.headers["content-length"]).toBe(String(SCRIPT.length));
  });

  // An outside audit: docs/console.md measures the first load in gzip, but the server sent every
  // script whole (300 kB, 735 kB with the charts), whatever Accept-Encoding said.
  it("sends scripts and index.html gzipped to a client that accepts gzip, whole to one that does not", async () => {
    const gzipGet = (path: string, method = "GET") =>
      new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }>((resolve, reject) => {
        const url = new URL(withBuild);
        const req = request({ host: url.hostname, port: url.port, path, method, headers: { "accept-encoding": "gzip, deflate, br" } }, (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
        });
        req.on("error", reject);
        req.end();
      });
    const script = await gzipGet("/console/assets/index-Ab12Cd34.js");
    expect(script.status).toBe(200);
    expect(script.headers).toMatchObject({ "content-encoding": "gzip", vary: "accept-encoding", "content-type": "text/javascript; charset=utf-8" });
    expect(gunzipSync(script.body).toString()).toBe(SCRIPT);
    expect(Number(script.headers["content-length"])).toBe(script.body.length);
    const head = await gzipGet("/console/assets/index-Ab12Cd34.js", "HEAD");
    expect(head.headers["content-length"]).toBe(script.headers["content-length"]);
    const page = await gzipGet("/console/subscriptions");
    expect(page.headers["content-encoding"]).toBe("gzip");
    expect(gunzipSync(page.body).toString()).toContain("<title>console</title>");
    // Without Accept-Encoding (or with gzip refused), the file as it is.
    const plain = await get(withBuild, "/console/assets/index-Ab12Cd34.js");
    expect(plain.headers["content-encoding"]).toBeUndefined();
    expect(plain.headers.vary).toBe("accept-encoding");
    expect(plain.body).toBe(SCRIPT);
  });

  it("a missing asset is a 404 (not the app, which a browser would try to run), other methods 405", async () => {
    const missing = await get(withBuild, "/console/assets/index-Old00000.js");
    expect(missing.status).toBe(404);
    expect(missing.headers["content-type"]).toBe("text/plain; charset=utf-8");
    expect(missing.body).toContain("reload the page");
    const post = await get(withBuild, "/console", "POST");
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe("GET, HEAD");
  });

  it("never serves a file outside the build", async () => {
    for (const path of [
      "/console/../secret.txt",
      "/console/assets/../../secret.txt",
      "/console/%2e%2e/secret.txt",
      "/console/..%2fsecret.txt",
      "/console/..%2f..%2fdist-other.txt",
      "/console/%2e%2e%2fdist-other.txt",
      "/console/..\\secret.txt",
      "/console/%00index.html",
    ]) {
      const res = await get(withBuild, path);
      expect(res.body, path).not.toContain(SECRET);
      expect([200, 400, 404], path).toContain(res.status);
    }
    expect((await get(withBuild, "/console/%E0%A4%A")).status).toBe(400);
  });

  it("says so when there is no build, and leaves other paths to the server", async () => {
    const res = await get(withoutBuild, "/console/");
    expect(res.status).toBe(503);
    expect(res.body).toContain("npm run console:build");
    expect((await get(withBuild, "/consoles")).status).toBe(404);
    expect((await get(withBuild, "/health")).body).toBe("ok");
  });

  it("tells the app whether the server pushes live balances", async () => {
    expect((await get(withBuild, "/console")).body).not.toContain("graphql-credits-live");
    const html = (await get(live, "/console")).body;
    expect(html).toContain('<meta name="graphql-credits-live" content="creditBalanceChanged" /></head>');
  });
});
