/**
 * GET /console and /console/*: the console's static build (console/dist) from the same server and
 * port as the API. Hashed files under /console/assets/ are cached for a year (their names change
 * with their content); everything else, and any other path under /console (the app's own routes),
 * answers index.html, never cached, so a new build is picked up on the next load.
 *
 * Paths are looked at decoded (`%2f` is a `/`): under /console/assets/ only a plain file name of that
 * folder is served (one with a `/` or `\` in it, or a `.` or `..` segment, is a 404, so
 * `assets/..%2findex.html` is never index.html cached for a year), and elsewhere a path with a
 * `.`, `..` or empty segment or a `\` is not looked up in the build at all: it is an app path.
 *
 * index.html says whether the served schema has the live-balance subscription (a meta tag the
 * console reads), so the console opens a WebSocket only to a server that accepts one.
 *
 * Text files (scripts, styles, index.html) go gzipped to a client that accepts gzip (gzipped-files.ts).
 */
import { createReadStream } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { extname, join, normalize, sep } from "node:path";
import type { ServerResponse } from "node:http";
import type { RouteHandler } from "../http/http-server.js";
import { CONSOLE_DIST_DIR } from "./console-paths.js";
import { acceptsGzip, createGzippedFiles, isCompressible } from "./gzipped-files.js";

export const CONSOLE_PATH = "/console";

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2",
  ".txt": "text/plain; charset=utf-8",
};

/** Headers of every console response: the page talks to its own origin only. */
const SECURITY_HEADERS = {
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  // Inline style attributes come from the chart library; scripts only from this origin.
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
};

const IMMUTABLE = "public, max-age=31536000, immutable";
const NO_CACHE = "no-cache";

/** The build's folder of hashed files (Vite's assetsDir), as it starts a decoded path under /console/. */
const ASSETS = "assets/";

/**
 * A path of the build as written, segments joined by `/`: none empty, `.` or `..`, no `\` (a
 * separator on Windows) or NUL. Anything else is not a file of the build whatever it resolves to.
 */
function isPlainPath(relative: string): boolean {
  if (relative === "" || relative.includes("\\") || relative.includes("\0")) return false;
  return relative.split("/").every((segment) => segment !== "" && segment !== "." && segment !== "..");
}

/** A file name right in the assets folder (Vite writes them flat): no folder, nothing leading out of it. */
function isAssetName(name: string): boolean {
  return !name.includes("/") && isPlainPath(name);
}

export interface ConsoleRouteOptions {
  /** The build to serve (console/dist). */
  distDir?: string;
  /** True when the served schema has Subscription.creditBalanceChanged. */
  liveBalances: boolean;
}

function sendText(res: ServerResponse, status: number, text: string, requestId: string): void {
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "cache-control": NO_CACHE, "x-request-id": requestId, ...SECURITY_HEADERS });
  res.end(text);
}

export function consoleRoute(options: ConsoleRouteOptions): RouteHandler {
  const distDir = options.distDir ?? CONSOLE_DIST_DIR;
  const liveTag = options.liveBalances ? '<meta name="graphql-credits-live" content="creditBalanceChanged" />' : "";
  // index.html with the live tag, read again only when the build changed.
  let index: { mtimeMs: number; html: string } | undefined;

  async function indexHtml(): Promise<string | undefined> {
    const path = join(distDir, "index.html");
    const info = await stat(path).catch(() => undefined);
    if (!info) return undefined;
    if (index?.mtimeMs !== info.mtimeMs) {
      const html = await readFile(path, "utf8");
      index = { mtimeMs: info.mtimeMs, html: html.replace("</head>", `${liveTag}</head>`) };
    }
    return index.html;
  }

  /** The build's file for a path under /console/, or undefined (not a plain path, outside the build, a folder, missing). */
  async function staticFile(relative: string): Promise<{ path: string; size: number; mtimeMs: number } | undefined> {
    if (!isPlainPath(relative)) return undefined;
    const path = normalize(join(distDir, relative));
    if (!path.startsWith(distDir + sep)) return undefined;
    const info = await stat(path).catch(() => undefined);
    return info?.isFile() ? { path, size: info.size, mtimeMs: info.mtimeMs } : undefined;
  }

  const gzipped = createGzippedFiles();

  return async ({ req, res, requestId }) => {
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("allow", "GET, HEAD");
      sendText(res, 405, "The console answers GET and HEAD only.", requestId);
      return;
    }
    const url = new URL(req.url ?? "/", "http://localhost");
    let relative: string;
    try {
      relative = decodeURIComponent(url.pathname.slice(CONSOLE_PATH.length + 1));
    } catch {
      sendText(res, 400, "Malformed path.", requestId);
      return;
    }
    const hashed = relative.startsWith(ASSETS);
    if (hashed && !isAssetName(relative.slice(ASSETS.length))) {
      sendText(res, 404, "No such console asset.", requestId);
      return;
    }
    if (relative !== "index.html") {
      const file = await staticFile(relative);
      if (file) {
        const extension = extname(file.path);
        const headers = {
          "content-type": CONTENT_TYPES[extension] ?? "application/octet-stream",
          "cache-control": hashed ? IMMUTABLE : NO_CACHE,
          "x-request-id": requestId,
          ...SECURITY_HEADERS,
        };
        if (isCompressible(extension)) {
          // The same URL answers gzip or not by Accept-Encoding: caches must keep both apart.
          res.setHeader("vary", "accept-encoding");
          if (acceptsGzip(req.headers["accept-encoding"])) {
            const body = await gzipped.file(file.path, file.mtimeMs);
            res.writeHead(200, { ...headers, "content-encoding": "gzip", "content-length": body.length });
            res.end(req.method === "HEAD" ? undefined : body);
            return;
          }
        }
        res.writeHead(200, { ...headers, "content-length": file.size });
        if (req.method === "HEAD") res.end();
        else createReadStream(file.path).pipe(res);
        return;
      }
      if (hashed) {
        // A hashed file of another build: a 404, not the app (a browser would run HTML as a script).
        sendText(res, 404, `No console asset ${relative}: reload the page for the current build.`, requestId);
        return;
      }
    }
    const html = await indexHtml();
    if (html === undefined) {
      sendText(res, 503, "The console is not built: the server builds it at start (npm start), or run `npm run console:build`.", requestId);
      return;
    }
    const headers = { "content-type": CONTENT_TYPES[".html"], "cache-control": NO_CACHE, vary: "accept-encoding", "x-request-id": requestId, ...SECURITY_HEADERS };
    if (acceptsGzip(req.headers["accept-encoding"])) {
      const body = await gzipped.text(`index.html@${index?.mtimeMs}`, html);
      res.writeHead(200, { ...headers, "content-encoding": "gzip", "content-length": body.length });
      res.end(req.method === "HEAD" ? undefined : body);
      return;
    }
    res.writeHead(200, { ...headers, "content-length": Buffer.byteLength(html) });
    res.end(req.method === "HEAD" ? undefined : html);
  };
}

/** True when the schema serves the live-balance subscription the console can use. */
export function schemaHasLiveBalances(schema: { getSubscriptionType(): { getFields(): Record<string, unknown> } | null | undefined }): boolean {
  return Boolean(schema.getSubscriptionType()?.getFields().creditBalanceChanged);
}
