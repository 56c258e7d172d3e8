/**
 * /health and /metrics by method: HEAD answers like GET (status and headers, no body), every other
 * method 405 with `Allow: GET, HEAD`; METRICS_TOKEN guards HEAD /metrics as it does GET. An outside
 * audit found HEAD /health answering 404 while GET answered 200, and POST on both answering 404.
 */
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../helpers/test-app.js";

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** node:http rather than fetch: fetch refuses a body on HEAD and hides how many body bytes came. */
function send(base: string, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    // Content-Length given: node:http sends a DELETE's body unframed otherwise.
    const framing = body === undefined ? {} : { "content-length": String(Buffer.byteLength(body)) };
    const req = request(`${base}${path}`, { method, headers: { ...headers, ...framing } }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => (text += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

const METRICS_TOKEN = "m".repeat(24);
let open: TestServer;
let guarded: TestServer;

beforeAll(async () => {
  open = await startTestServer();
  guarded = await startTestServer({ env: { METRICS_TOKEN } });
});
afterAll(async () => {
  await open?.close();
  await guarded?.close();
});

describe("/health and /metrics by method", () => {
  it.each(["/health", "/metrics"])("HEAD %s answers like GET, without a body", async (path) => {
    const get = await send(open.url, "GET", path);
    const head = await send(open.url, "HEAD", path);
    expect(get.status).toBe(200);
    expect(get.body.length).toBeGreaterThan(0);
    expect(head.status).toBe(200);
    expect(head.body).toBe("");
    expect(head.headers["content-type"]).toBe(get.headers["content-type"]);
    expect(head.headers["x-request-id"]).toBeTruthy();
    // /health's body is the same size every time; /metrics' changes between two scrapes.
    expect(Number(head.headers["content-length"])).toBeGreaterThan(0);
    if (path === "/health") expect(head.headers["content-length"]).toBe(get.headers["content-length"]);
    expect(Number(get.headers["content-length"])).toBe(Buffer.byteLength(get.body));
  });

  it.each([
    ["POST", "/health"],
    ["PUT", "/health"],
    ["DELETE", "/health"],
    ["PATCH", "/metrics"],
    ["POST", "/metrics"],
    ["OPTIONS", "/metrics"],
  ])("%s %s answers 405 with Allow: GET, HEAD", async (method, path) => {
    const res = await send(open.url, method, path, { "content-type": "application/json" }, method === "OPTIONS" ? undefined : "{}");
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe("GET, HEAD");
    expect(res.headers["content-type"]).toBe("text/plain; charset=utf-8");
    expect(res.body).toBe(`${method} is not allowed on ${path}: use GET or HEAD.\n`);
  });

  it("keeps METRICS_TOKEN's check for HEAD /metrics", async () => {
    expect((await send(guarded.url, "HEAD", "/metrics")).status).toBe(401);
    expect((await send(guarded.url, "HEAD", "/metrics", { authorization: "Bearer wrong" })).status).toBe(401);
    const allowed = await send(guarded.url, "HEAD", "/metrics", { authorization: `Bearer ${METRICS_TOKEN}` });
    expect([allowed.status, allowed.body]).toEqual([200, ""]);
    // A method /metrics does not answer is 405 whoever asks: there is nothing there to guard.
    expect((await send(guarded.url, "POST", "/metrics")).status).toBe(405);
  });

  it("leaves other paths as they were: 404 for an unknown one", async () => {
    expect((await send(open.url, "HEAD", "/nothing-here")).status).toBe(404);
    expect((await send(open.url, "POST", "/health/x")).status).toBe(404);
  });
});
