/**
 * An alert webhook receiver for tests that verifies every post's x-credits-signature the way
 * docs/alert-webhooks.md tells receivers to: HMAC-SHA256 of "<t>.<raw body>" with the shared secret,
 * compared in constant time, and a timestamp no older than five minutes.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

export interface ReceivedPost {
  body: Record<string, any>;
  signatureValid: boolean;
}

export function verifyCreditsSignature(header: string | undefined, rawBody: string, secret: string, nowSeconds = Date.now() / 1000): boolean {
  if (!header) return false;
  const parts = new Map(header.split(",").map((part) => part.split("=", 2) as [string, string]));
  const t = Number(parts.get("t"));
  const v1 = parts.get("v1") ?? "";
  if (!Number.isInteger(t) || Math.abs(nowSeconds - t) > 300) return false;
  const expected = createHmac("sha256", secret).update(`${t}.${rawBody}`).digest();
  const given = Buffer.from(v1, "hex");
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export async function startWebhookReceiver(secret: string) {
  const posts: ReceivedPost[] = [];
  const server = createServer((req, res) => {
    let raw = "";
    req.on("data", (chunk) => (raw += chunk));
    req.on("end", () => {
      const header = req.headers["x-credits-signature"];
      posts.push({ body: JSON.parse(raw), signatureValid: verifyCreditsSignature(Array.isArray(header) ? header[0] : header, raw, secret) });
      res.statusCode = 204;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/alerts`,
    posts,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
