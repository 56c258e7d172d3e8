/**
 * Delivers alerts to ALERT_WEBHOOK_URL: one JSON POST per alert, retried with exponential backoff on
 * network errors, timeouts, 429 and 5xx (other 4xx answers will not change on retry). Deliveries run
 * in the background and never hold up a request; the notifier keeps track of them, so app.close()
 * can give them a moment to finish and then stop them.
 */
import { createHmac } from "node:crypto";
import type { Logger } from "pino";

/**
 * `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, as Stripe signs: the receiver recomputes
 * the HMAC over the raw body with the shared secret and refuses old timestamps (docs/alert-webhooks.md).
 */
export function signWebhookBody(secret: string, body: string, unixSeconds: number): string {
  const digest = createHmac("sha256", secret).update(`${unixSeconds}.${body}`).digest("hex");
  return `t=${unixSeconds},v1=${digest}`;
}

/** What to log about a failed attempt: the error and its cause (fetch wraps ECONNREFUSED and the like in a bare TypeError). */
export function describeFailure(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = (err as { cause?: unknown }).cause;
  const causeText =
    cause instanceof Error ? `${(cause as { code?: string }).code ?? cause.name}: ${cause.message}` : cause === undefined ? "" : String(cause);
  return `${err.name}: ${err.message}${causeText ? ` (${causeText})` : ""}`;
}

/** Shorter pieces of the URL are left in a log line: they are no secret, and cutting them would garble its text. */
const MIN_REDACTED_LENGTH = 3;

/**
 * What a failure's text becomes before it is logged: the webhook URL, quoted whole, becomes its
 * origin, and any other quote of its user name, password, path or query becomes "[redacted]".
 * Webhook URLs often carry a secret there, and errors quote them: fetch refuses a URL with
 * user:password@ in it by quoting the whole URL.
 */
function urlRedactor(url: string): (text: string) => string {
  const parsed = new URL(url);
  const origin = parsed.origin;
  const whole = [url, parsed.href, `${origin}${parsed.pathname}${parsed.search}${parsed.hash}`, `${origin}${parsed.pathname}${parsed.search}`];
  const query = parsed.search.slice(1);
  // As written in the URL, and decoded (as an error may quote them).
  const parts = [
    parsed.username,
    parsed.password,
    `${parsed.pathname}${parsed.search}`,
    parsed.pathname === "/" ? "" : parsed.pathname,
    query,
    ...query.split("&").map((pair) => pair.slice(pair.indexOf("=") + 1)),
  ];
  const fragments = [...parts, ...parts.map(decodedOrEmpty), ...parsed.searchParams.values()].filter((part) => part.length >= MIN_REDACTED_LENGTH);
  const replacements: [string, string][] = [
    ...longestFirst(whole).map((text): [string, string] => [text, origin]),
    ...longestFirst(fragments).map((text): [string, string] => [text, "[redacted]"]),
  ];
  return (text) => replacements.reduce((redacted, [secret, shown]) => redacted.split(secret).join(shown), text);
}

function decodedOrEmpty(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return "";
  }
}

/** Distinct, longest first: a URL is replaced before the pieces of it, so each is replaced whole. */
function longestFirst(texts: string[]): string[] {
  return [...new Set(texts)].filter((text) => text !== "").sort((a, b) => b.length - a.length);
}

/** Which alert a log line is about: an operator looks it up in creditAlerts by id. */
interface AlertNamed {
  id?: unknown;
  kind?: unknown;
  subscriptionId?: unknown;
}

function alertNamed(payload: Record<string, unknown>): AlertNamed {
  return { id: payload.id, kind: payload.kind, subscriptionId: payload.subscriptionId };
}

export interface WebhookRetryPolicy {
  /** Attempts in all, the first included. */
  attempts: number;
  /** Wait before the first retry; each further retry waits `factor` times longer. */
  baseDelayMs: number;
  factor: number;
  /** Per-attempt time limit. */
  timeoutMs: number;
}

export const DEFAULT_WEBHOOK_RETRY: WebhookRetryPolicy = { attempts: 5, baseDelayMs: 500, factor: 4, timeoutMs: 5_000 };

/** Deliveries in flight at once; beyond this an alert is logged and counted but not posted (bounded memory in an alert storm). */
const MAX_IN_FLIGHT = 100;

export interface WebhookNotifierOptions {
  url: string;
  /** Signs every post (x-credits-signature); unsigned without it. */
  secret?: string;
  logger: Logger;
  retry?: Partial<WebhookRetryPolicy>;
  /** Called when a delivery is given up or dropped. */
  onFailure?: () => void;
}

export class WebhookNotifier {
  private readonly inFlight = new Set<Promise<void>>();
  private readonly stop = new AbortController();
  private readonly retry: WebhookRetryPolicy;
  /** Only the origin is ever logged: webhook URLs often carry a secret in their path or query. */
  private readonly target: string;
  /** A failure's text with the URL's secrets taken out, as it is logged. */
  private readonly redact: (text: string) => string;

  constructor(private readonly options: WebhookNotifierOptions) {
    this.retry = { ...DEFAULT_WEBHOOK_RETRY, ...options.retry };
    this.target = new URL(options.url).origin;
    this.redact = urlRedactor(options.url);
  }

  /** Starts delivering `payload` in the background. */
  send(payload: Record<string, unknown>): void {
    if (this.stop.signal.aborted) return;
    const alert = alertNamed(payload);
    if (this.inFlight.size >= MAX_IN_FLIGHT) {
      this.options.logger.warn({ event: "alerts.webhook_dropped", target: this.target, alert }, "too many alert webhook deliveries in flight; alert not posted");
      this.options.onFailure?.();
      return;
    }
    const delivery = this.deliver(JSON.stringify(payload), alert).finally(() => this.inFlight.delete(delivery));
    this.inFlight.add(delivery);
  }

  get pending(): number {
    return this.inFlight.size;
  }

  /** Waits up to `graceMs` for deliveries in flight, then aborts the rest (no further retries). */
  async close(graceMs = 2_000): Promise<void> {
    if (this.inFlight.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...this.inFlight]),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, graceMs);
        }),
      ]);
      clearTimeout(timer);
    }
    this.stop.abort();
    await Promise.allSettled([...this.inFlight]);
  }

  private async deliver(body: string, alert: AlertNamed): Promise<void> {
    const { attempts, baseDelayMs, factor, timeoutMs } = this.retry;
    let problem = "";
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (this.stop.signal.aborted) break;
      try {
        // Signed at each attempt, so a retry carries a fresh timestamp the receiver accepts.
        const headers: Record<string, string> = { "content-type": "application/json" };
        if (this.options.secret) headers["x-credits-signature"] = signWebhookBody(this.options.secret, body, Math.floor(Date.now() / 1000));
        const res = await fetch(this.options.url, {
          method: "POST",
          headers,
          body,
          // A redirect is not followed: fetch would follow a 302 with a GET, without the body or
          // the signature, and take the answer to that as the delivery. It is a failed one.
          redirect: "manual",
          signal: AbortSignal.any([this.stop.signal, AbortSignal.timeout(timeoutMs)]),
        });
        await res.body?.cancel().catch(() => undefined);
        if (res.ok) return;
        // Any answer but 2xx is a failed delivery and is retried (DESIGN.md, "Observability"): a
        // receiver that answers 401 or 404 while it is being deployed or rotating its secret would
        // otherwise lose the alert for good.
        problem = isRedirect(res.status) ? `HTTP ${res.status} (a redirect, not followed: point ALERT_WEBHOOK_URL at where it leads)` : `HTTP ${res.status}`;
      } catch (err) {
        problem = this.redact(describeFailure(err));
      }
      if (attempt < attempts) {
        const delayMs = this.backoff(baseDelayMs * factor ** (attempt - 1));
        // Each failed attempt is logged with its cause (DESIGN.md, "Observability"), not only the last:
        // a receiver that is down for a while shows in the log while its alerts wait.
        this.options.logger.warn(
          { event: "alerts.webhook_retry", target: this.target, alertId: alert.id, kind: alert.kind, attempt, of: attempts, problem, retryInMs: Math.round(delayMs) },
          "alert webhook delivery failed; retrying",
        );
        await this.wait(delayMs);
      }
    }
    this.options.logger.error(
      { event: "alerts.webhook_failed", target: this.target, alert, problem, stopped: this.stop.signal.aborted },
      "alert webhook delivery failed",
    );
    this.options.onFailure?.();
  }

  /** Backoff with jitter, so many instances do not retry in step. */
  private backoff(ms: number): number {
    return ms / 2 + Math.random() * (ms / 2);
  }

  /** Waits `ms`, cut short when the notifier stops. */
  private wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms).unref();
      const signal = this.stop.signal;
      function done() {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        resolve();
      }
      signal.addEventListener("abort", done, { once: true });
    });
  }
}

/** The statuses that send a client elsewhere (a Location to follow): not 304, which only says "not modified". */
function isRedirect(status: number): boolean {
  return [301, 302, 303, 307, 308].includes(status);
}
