/** The CORS policy on its own: which origins get headers, "*" without Vary, preflight answers. */
import type { IncomingMessage, ServerResponse } from "node:http";
import { describe, expect, it } from "vitest";
import { createCorsPolicy } from "../../src/http/cors.js";

function exchange(method: string, headers: Record<string, string>) {
  const set: Record<string, string> = {};
  let status = 0;
  const res = {
    setHeader: (k: string, v: string) => void (set[k.toLowerCase()] = v),
    writeHead: (s: number) => void (status = s),
    end: () => undefined,
  } as unknown as ServerResponse;
  return { req: { method, headers } as unknown as IncomingMessage, res, set, status: () => status };
}

describe("CORS policy", () => {
  it('"*" allows any origin with a literal * and no Vary', () => {
    const policy = createCorsPolicy({ origins: "*", allowLocalhost: false });
    const x = exchange("POST", { origin: "https://anywhere.example" });
    policy.apply(x.req, x.res);
    expect(x.set).toEqual({ "access-control-allow-origin": "*", "access-control-expose-headers": "x-request-id, retry-after" });
  });

  it("a list allows exactly its origins; localhost only in development mode; no Origin costs nothing", () => {
    const production = createCorsPolicy({ origins: ["https://app.example"], allowLocalhost: false });
    const development = createCorsPolicy({ origins: [], allowLocalhost: true });
    for (const [policy, origin, allowed] of [
      [production, "https://app.example", true],
      [production, "https://app.example.evil", false],
      [production, "http://localhost:5173", false],
      [development, "http://localhost:5173", true],
      [development, "http://127.0.0.1", true],
      [development, "http://localhost.evil.example", false],
      [development, "https://localhost:5173", false],
    ] as const) {
      const x = exchange("POST", { origin });
      policy.apply(x.req, x.res);
      expect(x.set["access-control-allow-origin"], `${origin}`).toBe(allowed ? origin : undefined);
    }
    const none = exchange("POST", {});
    production.apply(none.req, none.res);
    expect(none.set).toEqual({});
  });

  it("answers a preflight 204, with allow headers only for an allowed origin", () => {
    const policy = createCorsPolicy({ origins: ["https://app.example"], allowLocalhost: false });
    const ok = exchange("OPTIONS", { origin: "https://app.example", "access-control-request-method": "POST" });
    expect(policy.isPreflight(ok.req)).toBe(true);
    policy.answerPreflight(ok.req, ok.res);
    expect(ok.status()).toBe(204);
    expect(ok.set["access-control-allow-headers"]).toMatch(/^authorization, content-type, idempotency-key, x-request-id/);
    expect(ok.set["vary"]).toBe("Origin");
    const refused = exchange("OPTIONS", { origin: "https://other.example", "access-control-request-method": "POST" });
    policy.answerPreflight(refused.req, refused.res);
    expect(refused.status()).toBe(204);
    expect(refused.set["access-control-allow-origin"]).toBeUndefined();
    expect(policy.isPreflight(exchange("OPTIONS", {}).req)).toBe(false);
  });
});
