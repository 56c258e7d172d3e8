/** Alert webhook signatures and what a failed delivery logs. */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import pino from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import { describeFailure, signWebhookBody, WebhookNotifier } from "../../src/observability/alerts/webhook-notifier.js";
import { closedPort } from "../helpers/closed-port.js";
import { verifyCreditsSignature } from "../helpers/webhook-receiver.js";

describe("alert webhook signatures", () => {
  it("signs t=<seconds>,v1=<hex HMAC-SHA256 of t.body> and verifies only the same body, secret and a fresh time", () => {
    const body = JSON.stringify({ id: "a1", kind: "LOW_BALANCE" });
    const header = signWebhookBody("s3cret", body, 1_700_000_000);
    expect(header).toMatch(/^t=1700000000,v1=[0-9a-f]{64}$/);
    expect(verifyCreditsSignature(header, body, "s3cret", 1_700_000_010)).toBe(true);
    expect(verifyCreditsSignature(header, body + " ", "s3cret", 1_700_000_010)).toBe(false);
    expect(verifyCreditsSignature(header, body, "other", 1_700_000_010)).toBe(false);
    expect(verifyCreditsSignature(header, body, "s3cret", 1_700_001_000)).toBe(false);
  });

  it("posts the signature header", async () => {
    const seen: { header: string | undefined; body: string }[] = [];
    const server = createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        seen.push({ header: req.headers["x-credits-signature"] as string | undefined, body });
        res.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const notifier = new WebhookNotifier({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, secret: "k", logger: pino({ level: "silent" }) });
    notifier.send({ id: "x" });
    await notifier.close(5_000);
    server.close();
    expect(seen).toHaveLength(1);
    expect(verifyCreditsSignature(seen[0].header, seen[0].body, "k")).toBe(true);
  });

  it("logs the cause of a network failure, not just TypeError", async () => {
    const lines: any[] = [];
    const logger = pino({ level: "info" }, { write: (line: string) => lines.push(JSON.parse(line)) });
    const notifier = new WebhookNotifier({ url: `http://127.0.0.1:${await closedPort()}/`, logger, retry: { attempts: 2, baseDelayMs: 1 } });
    notifier.send({ id: "y" });
    await notifier.close(5_000);
    const failed = lines.find((l) => l.event === "alerts.webhook_failed");
    expect(failed.problem).toMatch(/ECONNREFUSED/);
    expect(describeFailure(new TypeError("fetch failed", { cause: Object.assign(new Error("connect refused"), { code: "ECONNREFUSED" }) }))).toBe(
      "TypeError: fetch failed (ECONNREFUSED: connect refused)",
    );
  });

  // An outside audit: with ALERT_WEBHOOK_URL=http://user:password@host/hook?token=…, each failed
  // attempt's "problem" was fetch's "Request cannot be constructed from a URL that includes
  // credentials: <the whole URL>", password and query token in the log. Only the origin is logged.
  describe("a failed delivery never logs the URL's secrets", () => {
    const secrets = /hookuser|HookPassSECRET|QuerySECRET|PathSECRET/;

    afterEach(() => {
      vi.unstubAllGlobals();
    });

    it("when the URL carries a user name and password (fetch refuses it)", async () => {
      const lines: any[] = [];
      const logger = pino({ level: "info" }, { write: (line: string) => lines.push(JSON.parse(line)) });
      const port = await closedPort();
      const notifier = new WebhookNotifier({
        url: `http://hookuser:HookPassSECRET@127.0.0.1:${port}/hook/PathSECRET?token=QuerySECRET`,
        logger,
        retry: { attempts: 2, baseDelayMs: 1 },
      });
      notifier.send({ id: "z" });
      await notifier.close(5_000);
      const delivery = lines.filter((l) => l.event === "alerts.webhook_retry" || l.event === "alerts.webhook_failed");
      expect(delivery.map((l) => l.event)).toEqual(["alerts.webhook_retry", "alerts.webhook_failed"]);
      for (const line of delivery) {
        expect(line.target).toBe(`http://127.0.0.1:${port}`);
        expect(line.problem).toMatch(/includes credentials/);
        expect(line.problem).toContain(`http://127.0.0.1:${port}`);
      }
      expect(JSON.stringify(lines)).not.toMatch(secrets);
    });

    it("when a failure's text quotes the URL, whole or in part", async () => {
      const url = "https://hooks.example/hook/PathSECRET?token=QuerySECRET";
      vi.stubGlobal("fetch", async () => {
        throw new TypeError(`fetch failed for ${url}`, { cause: new Error(`proxy refused /hook/PathSECRET?token=QuerySECRET (token=QuerySECRET)`) });
      });
      const lines: any[] = [];
      const logger = pino({ level: "info" }, { write: (line: string) => lines.push(JSON.parse(line)) });
      const notifier = new WebhookNotifier({ url, logger, retry: { attempts: 1 } });
      notifier.send({ id: "q" });
      await notifier.close(5_000);
      const failed = lines.find((l) => l.event === "alerts.webhook_failed");
      expect(failed.problem).toMatch(/^TypeError: fetch failed for https:\/\/hooks\.example/);
      expect(JSON.stringify(lines)).not.toMatch(secrets);
    });
  });
});
