/**
 * Browser tests: Debian's chromium driven by playwright-core (which ships no browser of its own).
 * When chromium is missing the browser tests are skipped with a message, unless REQUIRE_SERVICES=1
 * (CI, whose .ci/run installs it), which turns the skip into a failure.
 */
import { existsSync } from "node:fs";
import { chromium, type Browser, type Page } from "playwright-core";
import { REQUIRE_SERVICES } from "./services.js";

export const CHROMIUM_PATH = process.env.TEST_CHROMIUM_PATH ?? "/usr/bin/chromium";

/** True when chromium is installed; false (with a warning) when not; throws instead when `required`. */
export function chromiumAvailable(required = REQUIRE_SERVICES, path = CHROMIUM_PATH): boolean {
  if (existsSync(path)) return true;
  const message = `chromium is not installed at ${path} (apt-get install -y chromium)`;
  if (required) throw new Error(`${message}, and REQUIRE_SERVICES=1 requires it`);
  console.warn(`[tests] ${message}: the browser tests are skipped`);
  return false;
}

export function launchChromium(): Promise<Browser> {
  // playwright's launch gives the browser a fresh --user-data-dir of its own.
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

export interface PageProblems {
  /** Console errors, uncaught exceptions, failed requests and HTTP errors, as text. */
  list: string[];
  /** Problems matching `pattern` are expected from here on (a deliberate 403, say). */
  expect(pattern: RegExp): void;
}

/**
 * Records everything that would mean a broken page: console errors, uncaught exceptions, requests
 * that failed, and responses with an HTTP error status.
 */
export function watchProblems(page: Page): PageProblems {
  const list: string[] = [];
  const expected: RegExp[] = [];
  const record = (problem: string) => {
    if (!expected.some((pattern) => pattern.test(problem))) list.push(problem);
  };
  page.on("console", (message) => {
    if (message.type() === "error") record(`console error: ${message.text()}`);
  });
  page.on("pageerror", (error) => record(`uncaught: ${error.message}`));
  page.on("requestfailed", (request) => {
    // A navigation away aborts what the old page had in flight: not a failure of the console.
    if (request.failure()?.errorText === "net::ERR_ABORTED") return;
    record(`request failed: ${request.method()} ${request.url()} ${request.failure()?.errorText}`);
  });
  page.on("response", (response) => {
    if (response.status() >= 400) record(`HTTP ${response.status()}: ${response.request().method()} ${response.url()}`);
  });
  return { list, expect: (pattern) => void expected.push(pattern) };
}

/**
 * Loses the answer of the page's first `mutation <name>`: the request reaches the server, which
 * acts, and the connection is reset before the page hears back (later sends pass). Resolves to the
 * Idempotency-Key of every send of that mutation, in order, as it grows.
 */
export async function loseFirstAnswer(page: Page, mutationName: string): Promise<string[]> {
  const keys: string[] = [];
  let lose = true;
  await page.route("**/graphql", async (route) => {
    const request = route.request();
    if (!request.postData()?.includes(`mutation ${mutationName}`)) return route.continue();
    keys.push(request.headers()["idempotency-key"]);
    if (!lose) return route.continue();
    lose = false;
    await route.fetch();
    return route.abort("connectionreset");
  });
  return keys;
}
