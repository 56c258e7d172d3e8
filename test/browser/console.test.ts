/**
 * The console in a real browser: Debian's chromium driven by playwright-core, against the real
 * entry point (src/main.ts in a child process, as `npm start` runs it: it serves the console build
 * the suite's global setup made). Signs in through the start banner's console links as the demo
 * user and an admin, reads balances and charts, pages the ledger, prices an operation, searches
 * subscriptions, grants credits and sees the balance move without a reload (a double click acting
 * once), suspends with a reason; fails on any console error, uncaught exception or failed request.
 *
 * Load-time budget: the console's first load (a fresh browser context, nothing cached) shows the
 * signed-in user's subscriptions within CONSOLE_LOAD_BUDGET_MS = 2,000 ms.
 *
 * A server of its own with a tiny REQUEST_LIMIT shows a 429 with its retry time.
 *
 * The session and the live connection: a token that expires on an open page, an UNAUTHENTICATED
 * answer to any request and the live socket's 4401 close each return to sign-in with the server's
 * reason and close the socket; a sign-in link opened in a tab already showing the console is
 * adopted. Live balances on the customer's list, `held` kept fresh by live events (a slow call made
 * with SIMULATE_FAILURES' "slow"), the sign-in page and tabs for keyboards and screen readers,
 * amounts checked in the form, and a phone-width layout that never scrolls sideways.
 *
 * CONSOLE_SCREENSHOTS=1 saves screenshots of the main pages to docs/ (see docs/console.md).
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Browser, BrowserContext, Locator, Page } from "playwright-core";
import { mintToken } from "../../src/auth/mint.js";
import { DEMO_USER_ID } from "../../src/app/dev-seed.js";
import { chromiumAvailable, launchChromium, watchProblems, type PageProblems } from "../helpers/browser.js";
import { seedConsoleHistory } from "../helpers/console-history.js";
import { spawnServer, type SpawnedServer } from "../helpers/spawn-server.js";
import { freePort } from "../helpers/closed-port.js";
import { postGraphQL } from "../helpers/test-app.js";

const CONSOLE_LOAD_BUDGET_MS = 2_000;
/** How long a call made with `x-simulate-failure: slow` runs (its credits held meanwhile). */
const SLOW_CALL_MS = 5_000;
const SCREENSHOTS = process.env.CONSOLE_SCREENSHOTS === "1";
/** The plans the tested server is configured with (the console offers them when opening a subscription). */
const PLANS = JSON.stringify([
  { name: "team", period: "30d", allowances: { leads: { allowance: 200 } } },
  { name: "basic", period: "1mo", allowances: { ai: { allowance: 100 } } },
]);
const available = chromiumAvailable();

describe.skipIf(!available)("the console in chromium", () => {
  let server: SpawnedServer;
  let browser: Browser;
  let userLink: string;
  let adminLink: string;
  let admin: string;
  let demoSubscription: string;
  let dataDir: string | undefined;
  const customers: Record<string, string> = {};
  let context: BrowserContext | undefined;
  let problems: PageProblems | undefined;

  const gql = (query: string, variables: Record<string, unknown>, token: string, headers?: Record<string, string>) =>
    postGraphQL(`${server.url}/graphql`, query, variables, { token, headers });

  /** A page in a fresh context (no cache, no session storage), watched for problems. */
  async function freshPage(viewport = { width: 1360, height: 900 }): Promise<Page> {
    await context?.close();
    context = await browser.newContext({ viewport });
    const page = await context.newPage();
    // The browser's own start (a renderer process for the new context) is not the console's load time.
    await page.goto("about:blank");
    problems = watchProblems(page);
    return page;
  }

  async function screenshot(page: Page, name: string): Promise<void> {
    if (!SCREENSHOTS) return;
    mkdirSync("docs", { recursive: true });
    await page.waitForTimeout(300); // let the charts settle
    await page.screenshot({ path: `docs/console-${name}.png`, fullPage: true });
  }

  /** The subscription's ledger entries through the API, newest first. */
  async function ledgerOf(subscriptionId: string): Promise<{ id: string; kind: string; type: string; amount: number }[]> {
    const res = await gql(`query ($s: ID) { creditLedger(subscriptionId: $s, first: 1000) { edges { node { id kind type amount } } } }`, { s: subscriptionId }, admin);
    return res.body.data.creditLedger.edges.map((e: { node: { id: string; kind: string; type: string; amount: number } }) => e.node);
  }

  /** A sign-in link to a page of the console: `/console<path>#token=<token>`. */
  const linkTo = (path: string, token: string) => `${server.url}/console${path === "/" ? "" : path}#token=${token}`;

  /** The page's WebSockets, and how many of them have closed. */
  function watchSockets(page: Page): { opened: number; closed: number; sent: string[] } {
    const sockets = { opened: 0, closed: 0, sent: [] as string[] };
    page.on("websocket", (ws) => {
      sockets.opened++;
      ws.on("framesent", (frame) => void sockets.sent.push(String(frame.payload)));
      ws.on("close", () => void sockets.closed++);
    });
    return sockets;
  }

  async function heldOf(subscriptionId: string, type: string): Promise<number> {
    const res = await gql(`query ($id: ID!) { subscription(id: $id) { balances { type held } } }`, { id: subscriptionId }, admin);
    return res.body.data.subscription.balances.find((b: { type: string }) => b.type === type)?.held ?? 0;
  }

  async function balanceOf(subscriptionId: string, type: string): Promise<number> {
    const res = await gql(`query ($id: ID!) { subscription(id: $id) { balances { type balance } } }`, { id: subscriptionId }, admin);
    return res.body.data.subscription.balances.find((b: { type: string }) => b.type === type).balance;
  }

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "console-browser-"));
    const history = await seedConsoleHistory(join(dataDir, "pglite"));
    demoSubscription = history.demoSubscription;
    Object.assign(customers, history.customers);
    // SIMULATE_FAILURES lets a test make a slow call (x-simulate-failure: slow) to watch its hold.
    // PLANS names plans no seeded subscription is on (they are on "demo" and "pro"), for the plan picker.
    server = await spawnServer(
      { PGLITE_DIR: join(dataDir, "pglite"), SIMULATE_FAILURES: "1", SIMULATE_SLOW_MS: String(SLOW_CALL_MS), PLANS },
      120_000,
    );
    const banner = server.output();
    userLink = /Console \(user\):\s+(\S+)/.exec(banner)![1].replace("http://localhost", "http://127.0.0.1");
    adminLink = /Console \(admin\):\s+(\S+)/.exec(banner)![1].replace("http://localhost", "http://127.0.0.1");
    expect(/Demo subscription: (\S+)/.exec(banner)![1]).toBe(demoSubscription);
    admin = await mintToken({ sub: "browser-admin", admin: true });
    browser = await launchChromium();
  }, 300_000);

  afterEach(() => {
    // Whatever a test did, the console logged no error and no request of it failed.
    expect(problems?.list ?? []).toEqual([]);
  });

  afterAll(async () => {
    await context?.close();
    await browser?.close();
    server?.child.kill("SIGTERM");
    await server?.exited;
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it(`a user signs in from the banner's link, within ${CONSOLE_LOAD_BUDGET_MS} ms, and sees only their own subscriptions`, async () => {
    const page = await freshPage();
    const historyBefore = await page.evaluate(() => history.length);
    const started = Date.now();
    await page.goto(userLink);
    await page.getByTestId("subscription-row").first().waitFor();
    const loadMs = Date.now() - started;
    console.log(`[console] first load to the user's subscriptions: ${loadMs} ms (budget ${CONSOLE_LOAD_BUDGET_MS} ms)`);
    expect(loadMs).toBeLessThan(CONSOLE_LOAD_BUDGET_MS);

    // The token left the address bar for session storage.
    expect(page.url()).toBe(`${server.url}/console`);
    expect(await page.evaluate(() => sessionStorage.getItem("graphql-credits.token"))).toBe(new URL(userLink).hash.slice("#token=".length));
    // Replaced, not pushed: no entry of the history holds the token.
    expect(await page.evaluate(() => history.length)).toBe(historyBefore + 1);

    await expect.poll(() => page.getByTestId("viewer").textContent()).toBe(DEMO_USER_ID);
    const owners = await page.getByTestId("subscription-row").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-owner")));
    expect(owners).toEqual([DEMO_USER_ID]);
    await expect.poll(() => page.getByRole("link", { name: "Stats" }).count()).toBe(0);
    await screenshot(page, "user-home");

    // Another customer's subscription, typed into the address bar: the API's refusal, shown as it is.
    problems!.expect(/HTTP 403|status of 403/);
    await page.goto(`${server.url}/console/subscriptions/${customers["customer-alpha"]}`);
    const error = page.getByRole("alert");
    await error.waitFor();
    expect(await error.textContent()).toMatch(/forbidden.*You may only see your own subscriptions/is);
  });

  it("the user reads balances and charts, pages the ledger and prices an operation", async () => {
    const page = await freshPage();
    await page.goto(userLink);
    await page.getByTestId("subscription-row").first().click();
    await page.getByTestId("balances").waitFor();
    for (const type of ["ai", "leads", "skiptrace"]) {
      await expect.poll(() => page.getByTestId(`balance-${type}`).textContent()).toBe(String(await balanceOf(demoSubscription, type)));
    }

    // Usage: the per-day chart has bars on many days; one table row (and bar pair) per operation.
    await page.locator('[data-testid="chart-per-day"] .recharts-bar-rectangle').first().waitFor();
    expect(await page.locator('[data-testid="chart-per-day"] .recharts-bar-rectangle').count()).toBeGreaterThanOrEqual(10);
    await page.locator('[data-testid="chart-per-operation"] .recharts-bar-rectangle').first().waitFor();
    await expect.poll(() => page.getByTestId("usage-row").count()).toBe(4);
    await screenshot(page, "user-subscription");

    // Ledger: 20 entries a page, page after page to the end, as the API has them.
    const entries = await ledgerOf(demoSubscription);
    expect(entries.length).toBeGreaterThan(40);
    await page.getByTestId("tab-ledger").click();
    await expect.poll(() => page.getByTestId("ledger-row").count()).toBe(20);
    await screenshot(page, "user-ledger");
    const rowIds = () => page.getByTestId("ledger-row").evaluateAll((trs) => trs.map((tr) => tr.lastElementChild!.getAttribute("title")));
    for (let pageNo = 1; ; pageNo++) {
      // Each page holds exactly the API's entries of that page, in order.
      await expect.poll(rowIds).toEqual(entries.slice((pageNo - 1) * 20, pageNo * 20).map((e) => e.id));
      if (await page.getByTestId("ledger-older").isDisabled()) {
        expect(pageNo).toBe(Math.ceil(entries.length / 20));
        break;
      }
      await page.getByTestId("ledger-older").click();
    }
    // Back to the newest page, one page at a time.
    const pages = Math.ceil(entries.length / 20);
    for (let pageNo = pages - 1; pageNo >= 1; pageNo--) {
      await page.getByTestId("ledger-newer").click();
      await expect.poll(rowIds).toEqual(entries.slice((pageNo - 1) * 20, pageNo * 20).map((e) => e.id));
    }
    expect(await page.getByTestId("ledger-newer").isDisabled()).toBe(true);
    // A filter: only the AI entries.
    await page.getByTestId("ledger-type").selectOption("ai");
    const aiRows = Math.min(20, entries.filter((e) => e.type === "ai").length);
    await expect
      .poll(() => page.getByTestId("ledger-row").evaluateAll((trs) => trs.map((tr) => tr.children[1].textContent)))
      .toEqual(Array(aiRows).fill("ai"));

    // The cost calculator prices its example (an AI task and a lead search) over creditPreview.
    await page.getByTestId("tab-calculator").click();
    await page.getByTestId("calc-run").click();
    await page.getByTestId("calc-result").waitFor();
    expect(await page.getByTestId("calc-total-leads").textContent()).toBe("25 credits (leads)");
    expect(await page.getByTestId("calc-total-ai").textContent()).toMatch(/^\d+ credits? \(ai\)$/);
    await screenshot(page, "calculator");
  });

  it("shows a change made elsewhere live, pushed over graphql-ws, without a reload", async () => {
    const page = await freshPage();
    await page.goto(userLink);
    await page.getByTestId("subscription-row").first().click();
    await expect.poll(() => page.locator(".live-dot.on").count()).toBe(1);
    await page.evaluate(() => ((window as unknown as { marker: number }).marker = 7));
    const before = await balanceOf(demoSubscription, "skiptrace");
    // An admin grants through the API, not through this page.
    const grant = await gql(
      `mutation ($input: GrantCreditsInput!) { grantCredits(input: $input) { balanceAfter } }`,
      { input: { subscriptionId: demoSubscription, type: "skiptrace", amount: 25, reason: "Support ticket 88" } },
      admin,
    );
    expect(grant.body.data.grantCredits.balanceAfter).toBe(before + 25);
    await expect.poll(() => page.getByTestId("balance-skiptrace").textContent(), { timeout: 10_000 }).toBe(String(before + 25));
    expect(await page.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(7);
  });

  it("speaks graphql-ws as DESIGN.md says: the token in connection_init, one subscription per followed subscription, shared by the list and its page", async () => {
    // /graphql's WebSocket played by the test, to read what the console sends and push an event.
    const page = await freshPage();
    const received: { type: string; payload?: any; id?: string }[] = [];
    let connections = 0;
    await page.routeWebSocket(/\/graphql$/, (ws) => {
      connections++;
      ws.onMessage((text) => {
        const message = JSON.parse(String(text));
        received.push(message);
        // The console pings every 10 s and reconnects without a pong (console/src/live/connection.ts).
        if (message.type === "ping") ws.send(JSON.stringify({ type: "pong" }));
        if (message.type === "connection_init") ws.send(JSON.stringify({ type: "connection_ack" }));
        if (message.type === "subscribe") {
          const event = { subscriptionId: demoSubscription, type: "ai", balance: 777, entries: 2, lastEntry: { createdAt: new Date().toISOString() } };
          ws.send(JSON.stringify({ id: message.id, type: "next", payload: { data: { creditBalanceChanged: event } } }));
        }
      });
    });
    await page.goto(userLink);
    // The customer's list is live: its subscription followed, the pushed balance shown.
    const row = page.getByTestId("subscription-row").first();
    await expect.poll(() => row.getByTestId("balance-ai").textContent()).toBe("777");
    expect(await row.locator(".live-dot.on").textContent()).toContain("live");
    await row.click();
    await page.getByTestId("subscription-page").waitFor();
    await expect.poll(() => page.getByTestId("balance-ai").textContent()).toBe("777");
    expect(await page.locator(".live-dot.on").textContent()).toContain("live");

    const token = new URL(userLink).hash.slice("#token=".length);
    expect(received.find((m) => m.type === "connection_init")?.payload).toEqual({ authorization: `Bearer ${token}` });
    // One connection, and the list's subscription kept for the page rather than completed and sent again.
    expect(connections).toBe(1);
    expect(received.filter((m) => m.type === "subscribe")).toHaveLength(1);
    expect(received.filter((m) => m.type === "complete")).toHaveLength(0);
    const subscribe = received.find((m) => m.type === "subscribe")!;
    expect(subscribe.payload.query).toContain("creditBalanceChanged(subscriptionId: $subscriptionId)");
    expect(subscribe.payload.variables).toEqual({ subscriptionId: demoSubscription });
    // The other balances still show the query's figures.
    expect(await page.getByTestId("balance-leads").textContent()).toBe(String(await balanceOf(demoSubscription, "leads")));
  });

  it("an admin finds a customer by owner id, grants 100 credits with a reason and sees the balance move without a reload, once for a double click", async () => {
    const page = await freshPage();
    const started = Date.now();
    await page.goto(adminLink);
    await page.getByTestId("subscription-row").first().waitFor();
    console.log(`[console] first load to the admin's subscription list: ${Date.now() - started} ms`);

    // The newest are listed on arrival: customer-beta was opened last.
    const owners = await page.getByTestId("subscription-row").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-owner")));
    expect(owners).toEqual(["customer-beta", "customer-alpha", DEMO_USER_ID]);
    await screenshot(page, "admin-subscriptions");

    await page.getByTestId("search").fill("customer-al");
    await expect.poll(() => page.getByTestId("subscription-row").count()).toBe(1);
    await page.getByTestId("subscription-row").click();
    await page.getByTestId("balances").waitFor();
    expect(await page.getByTestId("owner").textContent()).toBe("customer-alpha");
    await expect.poll(() => page.getByTestId("balance-leads").textContent()).toBe(String(await balanceOf(customers["customer-alpha"], "leads")));
    const leadsBefore = await balanceOf(customers["customer-alpha"], "leads");

    // The page must not reload: a marker on window survives only if it does not.
    await page.evaluate(() => ((window as unknown as { marker: number }).marker = 42));
    const keys: string[] = [];
    page.on("request", (request) => {
      if (request.method() === "POST" && request.postData()?.includes("grantCredits")) keys.push(request.headers()["idempotency-key"] ?? "none");
    });
    await page.getByTestId("action-type").selectOption("leads");
    await page.getByTestId("action-amount").fill("100");
    await page.getByTestId("action-reason").fill("Invoice 2041 paid");
    await page.getByTestId("action-submit").dblclick();
    await expect.poll(() => page.getByTestId("balance-leads").textContent(), { timeout: 10_000 }).toBe(String(leadsBefore + 100));
    expect(await page.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(42);
    expect(await balanceOf(customers["customer-alpha"], "leads")).toBe(leadsBefore + 100);
    expect(keys.length).toBeGreaterThanOrEqual(1);
    expect(new Set(keys).size).toBe(1);
    expect(keys[0]).toMatch(/^console-[0-9a-f]{32}$/);
    // The grant is one of the subscription's grants now, with what is left of it and its expiry.
    await page.getByTestId("grants").locator("summary").click();
    await expect
      .poll(() => page.getByTestId("grant-row").evaluateAll((rows) => rows.map((r) => [...r.children].map((td) => td.textContent))))
      .toContainEqual(["leads", "PAID", "100", "100", "50", "never", "Invoice 2041 paid"]);
    await page.getByTestId("tab-ledger").click();
    await expect.poll(() => page.locator('[data-testid="ledger-row"][data-kind="GRANT"]').count()).toBe(2);
    expect(await page.getByTestId("notice").textContent()).toContain("Granted 100 credits (leads): Invoice 2041 paid");
    await screenshot(page, "admin-subscription");

    // A refused change: the server's message in place, the page (and its balances) still there.
    problems!.expect(/HTTP 400|status of 400/);
    await page.getByTestId("action-adjust").click();
    await page.getByTestId("action-type").selectOption("leads");
    await page.getByTestId("action-amount").fill("-100000");
    await page.getByTestId("action-reason").fill("Typo test");
    await page.getByTestId("action-submit").click();
    const refusal = page.getByTestId("admin-actions").getByRole("alert");
    await expect.poll(() => refusal.textContent()).toMatch(/bad user input \(HTTP 400\).*would take the leads balance below zero/);
    expect(await page.getByTestId("balance-leads").textContent()).toBe(String(leadsBefore + 100));

    // Suspend with a reason: the status and its reason show at once.
    await page.getByTestId("action-status").click();
    await page.getByTestId("action-reason").fill("Chargeback under review");
    await page.getByTestId("action-submit").click();
    await expect.poll(() => page.getByTestId("status").textContent()).toContain("SUSPENDED");
    expect(await page.getByTestId("status").textContent()).toContain("Chargeback under review");
    await page.getByTestId("action-reason").fill("Chargeback resolved");
    await page.getByTestId("action-submit").click();
    await expect.poll(() => page.getByTestId("status").textContent()).toContain("ACTIVE");
  });

  it("an admin refunds part of a charge picked in the ledger", async () => {
    const page = await freshPage();
    await page.goto(adminLink);
    await page.getByTestId("search").fill(DEMO_USER_ID);
    await expect.poll(() => page.getByTestId("subscription-row").count()).toBe(1);
    await page.getByTestId("subscription-row").click();
    await page.getByTestId("tab-ledger").click();
    // A debit with credits left to refund: only those offer "refund…".
    const debit = page.locator('[data-testid="ledger-row"][data-kind="DEBIT"]:has([data-testid="ledger-refund"])').first();
    await debit.waitFor();
    const type = (await debit.locator("td").nth(1).textContent())!;
    const before = await balanceOf(demoSubscription, type);
    await debit.getByTestId("ledger-refund").click();
    // The form takes the picked debit on its next render (and empties the amount): fill it after that.
    await expect.poll(() => page.getByTestId("action-entry").inputValue()).not.toBe("");
    await page.getByTestId("action-amount").fill("1");
    await page.getByTestId("action-reason").fill("Goodwill: slow answer");
    await page.getByTestId("action-submit").click();
    await expect.poll(() => page.getByTestId(`balance-${type}`).textContent()).toBe(String(before + 1));
    // The message names what was refunded, and to which subscription.
    expect(await page.getByTestId("notice").textContent()).toBe(`Refunded 1 credit (${type}) to subscription ${demoSubscription} (owner ${DEMO_USER_ID}): Goodwill: slow answer`);
    await expect.poll(() => page.locator('[data-testid="ledger-row"]').first().getAttribute("data-kind")).toBe("REFUND");
  });

  it("an admin reads the ledger across subscriptions, the stats charts and the alerts", async () => {
    const page = await freshPage();
    await page.goto(adminLink);
    await page.getByRole("link", { name: "Ledger" }).click();
    await expect.poll(() => page.getByTestId("ledger-row").count()).toBe(20);
    // Newest first across subscriptions: the customers' grants (and the grant above) lead.
    const shown = await page.getByTestId("ledger-row").evaluateAll((rows) => rows.map((r) => r.children[1].textContent));
    expect(new Set(shown).size).toBeGreaterThanOrEqual(2);
    await screenshot(page, "admin-ledger");

    await page.getByRole("link", { name: "Stats" }).click();
    for (const chart of ["chart-per-day", "chart-top-operations", "chart-top-subscriptions", "chart-per-operation"]) {
      await page.locator(`[data-testid="${chart}"] .recharts-bar-rectangle`).first().waitFor();
    }
    await expect.poll(() => page.locator('[data-testid="accuracy"] tbody tr').count()).toBe(4);
    await screenshot(page, "admin-stats");

    await page.getByRole("link", { name: "Alerts" }).click();
    await page.getByTestId("alerts").waitFor();
  });

  it("shows a 429 as the server's message with its retry time, never a blank page", async () => {
    // A server of its own with a request limit of 2 a minute per caller. A page load costs a request
    // for its list and one for each live subscribe (they count too), so it is reloaded until refused.
    const limited = await spawnServer({ PGLITE_DIR: "memory://", REQUEST_LIMIT: "2/1m", CONSOLE_BUILD: "off" }, 120_000);
    try {
      const link = /Console \(user\):\s+(\S+)/.exec(limited.output())![1].replace("http://localhost", "http://127.0.0.1");
      const page = await freshPage();
      problems!.expect(/HTTP 429|status of 429/);
      await page.goto(link);
      const alert = page.getByRole("alert").and(page.locator("[data-code]"));
      const rows = page.getByTestId("subscription-row");
      await rows.or(alert).first().waitFor();
      for (let reloads = 0; reloads < 3 && (await alert.count()) === 0; reloads++) {
        await page.reload();
        await rows.or(alert).first().waitFor();
      }
      await alert.waitFor();
      expect(await alert.getAttribute("data-code")).toBe("RATE_LIMITED");
      // The server's own words say when; the console adds its "Retry in N s." only when they do not.
      expect(await alert.textContent()).toMatch(/rate limited \(HTTP 429\): Too many requests.*try again in \d+ s/);
      expect(await page.locator(".top .brand").count()).toBe(1);
      expect(await page.getByRole("button", { name: "Retry" }).count()).toBe(1);
      await screenshot(page, "error-429");
    } finally {
      limited.child.kill("SIGTERM");
      await limited.exited;
    }
  });

  it("signs in with a pasted token, and a bad token returns to sign-in with the server's reason", async () => {
    const page = await freshPage();
    await page.goto(`${server.url}/console`);
    await page.getByTestId("signin").waitFor();
    await screenshot(page, "signin");
    problems!.expect(/HTTP 401|status of 401/);
    await page.getByTestId("token-input").fill("not-a-token");
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect.poll(() => page.getByRole("alert").textContent()).toMatch(/token/i);
    await page.getByTestId("token-input").fill(admin);
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect.poll(() => page.getByTestId("viewer").textContent()).toContain("browser-admin");
  });

  describe("the session ends on any UNAUTHENTICATED answer, back to sign-in with the server's reason, the live socket closed", () => {
    it("a token that expires on an open page, with nothing clicked", async () => {
      const page = await freshPage();
      problems!.expect(/HTTP 401|status of 401/);
      const sockets = watchSockets(page);
      const short = await mintToken({ sub: "customer-beta", expiresIn: "8s" });
      await page.goto(linkTo(`/subscriptions/${customers["customer-beta"]}`, short));
      await page.getByTestId("subscription-page").waitFor();
      await expect.poll(() => page.locator(".live-dot.on").count(), { timeout: 5_000 }).toBe(1);
      expect(sockets.opened).toBe(1);

      // At its expiry the console asks the server again, and signs out with its answer.
      await expect.poll(() => page.getByTestId("signin-problem").textContent(), { timeout: 15_000 }).toBe("Token expired: sign in again");
      expect(await page.getByTestId("subscription-page").count()).toBe(0);
      expect(await page.evaluate(() => sessionStorage.getItem("graphql-credits.token"))).toBeNull();
      await expect.poll(() => sockets.closed).toBe(1);
      // The sign-in page has the focus on its (labelled) token field, to paste a new one.
      expect(await page.evaluate(() => document.activeElement?.getAttribute("data-testid"))).toBe("token-input");
    });

    it("an UNAUTHENTICATED answer to one panel's request, instead of a Retry that cannot succeed", async () => {
      const page = await freshPage();
      problems!.expect(/HTTP 401|status of 401/);
      const sockets = watchSockets(page);
      const beta = await mintToken({ sub: "customer-beta" });
      // The ledger's request is refused as a revoked token would be; the rest reaches the server.
      await page.route("**/graphql", async (route) => {
        if (!route.request().postData()?.includes("query Ledger")) return route.continue();
        await route.fulfill({
          status: 401,
          contentType: "application/json",
          body: JSON.stringify({ errors: [{ message: "Token revoked: sign in again", extensions: { code: "UNAUTHENTICATED", http: { status: 401 } } }] }),
        });
      });
      await page.goto(linkTo(`/subscriptions/${customers["customer-beta"]}`, beta));
      await expect.poll(() => page.locator(".live-dot.on").count(), { timeout: 5_000 }).toBe(1);
      await page.getByTestId("tab-ledger").click();
      await expect.poll(() => page.getByTestId("signin-problem").textContent()).toBe("Token revoked: sign in again");
      expect(await page.getByRole("button", { name: "Retry" }).count()).toBe(0);
      expect(await page.evaluate(() => sessionStorage.getItem("graphql-credits.token"))).toBeNull();
      await expect.poll(() => sockets.closed).toBe(sockets.opened);
      expect(sockets.opened).toBe(1);
    });

    it("the live socket closed with 4401", async () => {
      const page = await freshPage();
      const beta = await mintToken({ sub: "customer-beta" });
      let closedWith4401 = 0;
      await page.routeWebSocket(/\/graphql$/, (ws) => {
        ws.onMessage((text) => {
          if (JSON.parse(String(text)).type !== "connection_init") return;
          closedWith4401++;
          void ws.close({ code: 4401, reason: "Unauthorized: token revoked" });
        });
      });
      await page.goto(linkTo(`/subscriptions/${customers["customer-beta"]}`, beta));
      // The server's HTTP answer still takes the token here, so the close's own reason is shown.
      await expect.poll(() => page.getByTestId("signin-problem").textContent()).toBe("Unauthorized: token revoked");
      expect(await page.evaluate(() => sessionStorage.getItem("graphql-credits.token"))).toBeNull();
      // Not retried: a refused token does not become good by reconnecting.
      await page.waitForTimeout(500);
      expect(closedWith4401).toBe(1);
    });
  });

  it("adopts a sign-in link opened in a tab already showing the console (a fragment-only navigation)", async () => {
    const page = await freshPage();
    const sockets = watchSockets(page);
    await page.goto(`${server.url}/console`);
    await page.getByTestId("signin").waitFor();
    await page.goto(userLink); // same document: only the fragment changes
    await expect.poll(() => page.getByTestId("viewer").textContent()).toBe(DEMO_USER_ID);
    expect(page.url()).toBe(`${server.url}/console`);
    expect(await page.evaluate(() => sessionStorage.getItem("graphql-credits.token"))).toBe(new URL(userLink).hash.slice("#token=".length));
    await expect.poll(() => page.locator(".live-dot.on").count(), { timeout: 5_000 }).toBe(1);

    // Another link while signed in: the other session, on a new live connection.
    await page.goto(adminLink);
    await expect.poll(() => page.getByTestId("viewer").textContent()).toContain("demo-admin");
    expect(page.url()).toBe(`${server.url}/console`);
    await page.getByTestId("subscriptions").waitFor();
    await expect.poll(() => sockets.closed).toBe(1);
  });

  it("the customer's list of subscriptions is live, over the one connection its subscription pages use", async () => {
    const page = await freshPage();
    const sockets = watchSockets(page);
    const beta = await mintToken({ sub: "customer-beta" });
    await page.goto(linkTo("/", beta));
    const row = page.getByTestId("subscription-row");
    await row.waitFor();
    expect(await row.getAttribute("data-owner")).toBe("customer-beta");
    await expect.poll(() => row.locator(".live-dot.on").count(), { timeout: 5_000 }).toBe(1);
    await expect.poll(() => row.getByTestId("balance-leads").textContent()).toBe(String(await balanceOf(customers["customer-beta"], "leads")));
    await page.evaluate(() => ((window as unknown as { marker: number }).marker = 9));

    const grant = await gql(
      `mutation ($input: GrantCreditsInput!) { grantCredits(input: $input) { balanceAfter } }`,
      { input: { subscriptionId: customers["customer-beta"], type: "leads", amount: 30, reason: "Loyalty bonus" } },
      admin,
    );
    await expect.poll(() => row.getByTestId("balance-leads").textContent(), { timeout: 10_000 }).toBe(String(grant.body.data.grantCredits.balanceAfter));
    expect(await page.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(9);

    await row.click();
    await page.getByTestId("subscription-page").waitFor();
    await expect.poll(() => page.locator(".live-dot.on").count(), { timeout: 5_000 }).toBe(1);
    expect(sockets.opened).toBe(1);
    expect(sockets.sent.filter((frame) => frame.includes('"subscribe"'))).toHaveLength(1);
  });

  it("keeps a balance's held credits fresh from live events: shown while a slow call runs, gone once it settles", async () => {
    const page = await freshPage();
    const beta = await mintToken({ sub: "customer-beta" });
    const subscription = customers["customer-beta"];
    await gql(
      `mutation ($input: GrantCreditsInput!) { grantCredits(input: $input) { balanceAfter } }`,
      { input: { subscriptionId: subscription, type: "skiptrace", amount: 5, reason: "Trial" } },
      admin,
    );
    await page.goto(linkTo(`/subscriptions/${subscription}`, beta));
    await expect.poll(() => page.locator(".live-dot.on").count(), { timeout: 5_000 }).toBe(1);
    expect(await page.getByTestId("held-leads").count()).toBe(0);

    // A call that runs SLOW_CALL_MS, holding its estimate (40 leads) meanwhile.
    const started = Date.now();
    const call = gql(
      `mutation ($s: ID!) { searchLeads(subscriptionId: $s, input: { query: "slow roofers", limit: 40 }) { total } }`,
      { s: subscription },
      beta,
      { "x-simulate-failure": "slow" },
    );
    await expect.poll(() => page.getByTestId("held-leads").textContent(), { timeout: SLOW_CALL_MS - 1_000 }).toBe("40 held by running calls");
    expect(Date.now() - started).toBeLessThan(SLOW_CALL_MS);
    expect(await heldOf(subscription, "leads")).toBe(40);
    // A page loaded during the call shows it too, and sees it settle without a reload.
    await page.reload();
    await expect.poll(() => page.locator(".live-dot.on").count(), { timeout: 5_000 }).toBe(1);
    expect(await page.getByTestId("held-leads").textContent()).toBe("40 held by running calls");

    const result = await call;
    expect(result.body.errors).toBeUndefined();
    expect(await heldOf(subscription, "leads")).toBe(0);
    await expect.poll(() => page.getByTestId("held-leads").count(), { timeout: 10_000 }).toBe(0);
    await expect.poll(() => page.getByTestId("balance-leads").textContent()).toBe(String(await balanceOf(subscription, "leads")));

    // A call that costs exactly what it held settles without a ledger entry, so without an event:
    // the held credits go all the same (read again while any are held).
    const trace = gql(
      `mutation ($s: ID!) { skipTrace(subscriptionId: $s, input: { records: [{ firstName: "Ada", lastName: "Byron", address: "1 Main St" }] }) { matches { recordIndex } } }`,
      { s: subscription },
      beta,
      { "x-simulate-failure": "slow" },
    );
    await expect.poll(() => page.getByTestId("held-skiptrace").textContent(), { timeout: SLOW_CALL_MS - 1_000 }).toBe("1 held by running calls");
    const traced = await trace;
    expect(traced.body.errors).toBeUndefined();
    expect(traced.body.extensions!.credits.charges[0]).toMatchObject({ estimated: 1, cost: 1, released: 0 });
    await expect.poll(() => page.getByTestId("held-skiptrace").count(), { timeout: 10_000 }).toBe(0);
  });

  it("is usable from the keyboard and by screen readers: a labelled, focused sign-in field, and tabs as a tablist", async () => {
    const page = await freshPage();
    await page.goto(`${server.url}/console`);
    const field = page.getByLabel("Token (JWT)");
    await field.waitFor();
    expect(await field.getAttribute("data-testid")).toBe("token-input");
    // Focused on arrival: type (or paste), Tab to Sign in, Enter.
    expect(await page.evaluate(() => document.activeElement?.getAttribute("data-testid"))).toBe("token-input");
    await page.keyboard.type(new URL(userLink).hash.slice("#token=".length));
    await page.keyboard.press("Tab");
    await page.keyboard.press("Enter");
    await page.getByTestId("subscription-row").first().click();

    const tablist = page.getByRole("tablist", { name: "Subscription details" });
    await tablist.waitFor();
    expect(await tablist.getByRole("tab").allTextContents()).toEqual(["usage", "ledger", "alerts", "calculator"]);
    const selected = () => tablist.getByRole("tab", { selected: true }).textContent();
    expect(await selected()).toBe("usage");
    // Only the selected tab is in the Tab order; the arrow keys move the selection, and the focus with it.
    expect(await tablist.getByRole("tab").evaluateAll((tabs) => tabs.map((t) => (t as HTMLElement).tabIndex))).toEqual([0, -1, -1, -1]);
    await tablist.getByRole("tab", { selected: true }).focus();
    await page.keyboard.press("ArrowRight");
    await expect.poll(selected).toBe("ledger");
    expect(await page.evaluate(() => document.activeElement?.getAttribute("aria-selected"))).toBe("true");
    await page.getByRole("tabpanel", { name: /ledger/i }).getByTestId("ledger").waitFor();
    await page.keyboard.press("End");
    await expect.poll(selected).toBe("calculator");
    await page.keyboard.press("ArrowRight"); // wraps around
    await expect.poll(selected).toBe("usage");
    await page.getByRole("tabpanel", { name: /usage/i }).getByTestId("usage").waitFor();
  });

  it("checks amounts in the form before sending, saying what to type", async () => {
    const page = await freshPage();
    const mutations: string[] = [];
    page.on("request", (request) => {
      const body = request.postData() ?? "";
      if (request.method() === "POST" && /grantCredits|adjustCredits|refundCharge|createSubscription/.test(body)) mutations.push(body);
    });
    const adminToken = new URL(adminLink).hash.slice("#token=".length);
    await page.goto(linkTo(`/subscriptions/${customers["customer-beta"]}`, adminToken));
    await page.getByTestId("admin-actions").waitFor();
    const amount = page.getByTestId("action-amount");
    const problem = page.getByTestId("action-amount-problem");

    await page.getByTestId("action-adjust").click();
    await amount.fill("abc");
    await page.getByTestId("action-reason").fill("Typo test");
    await page.getByTestId("action-submit").click();
    await expect.poll(() => problem.textContent()).toMatch(/^Delta must be a whole number other than 0, .*negative \(e\.g\. -25\) takes them away\.$/);
    expect(await problem.getAttribute("role")).toBe("alert");
    expect(await amount.getAttribute("aria-invalid")).toBe("true");
    expect(await page.evaluate(() => document.activeElement?.getAttribute("data-testid"))).toBe("action-amount");
    for (const text of ["1.5", "0", "99999999999"]) {
      await amount.fill(text);
      await page.getByTestId("action-submit").click();
      expect(await problem.count()).toBe(1);
    }

    await page.getByTestId("action-grant").click();
    await amount.fill("-5");
    await page.getByTestId("action-reason").fill("Typo test");
    await page.getByTestId("action-submit").click();
    await expect.poll(() => problem.textContent()).toMatch(/^Credits must be a whole number from 1 to 2,147,483,647, e\.g\. 100\.$/);

    await page.getByTestId("action-refund").click();
    await amount.fill("lots");
    await page.getByTestId("action-reason").fill("Typo test");
    await page.getByTestId("action-submit").click();
    await expect.poll(() => problem.textContent()).toMatch(/or empty to refund all that is left/);

    // Opening a subscription: the starting credits likewise.
    await page.getByRole("link", { name: "Subscriptions" }).click();
    const form = page.getByTestId("create-subscription");
    await form.getByLabel("Owner id").fill("customer-gamma");
    await page.getByTestId("create-credits-leads").fill("abc");
    await form.getByRole("button", { name: "Open" }).click();
    await expect.poll(() => page.getByTestId("create-credits-problem").textContent()).toMatch(/^leads credits must be a whole number from 0/);
    expect(await page.evaluate(() => document.activeElement?.getAttribute("data-testid"))).toBe("create-credits-leads");

    expect(mutations).toEqual([]);
  });

  it("fits a phone's width: the header wraps, wide tables scroll inside their panel, the page never sideways", async () => {
    const width = 390;
    const page = await freshPage({ width, height: 844 });
    const adminToken = new URL(adminLink).hash.slice("#token=".length);
    const pageWidth = () => page.evaluate(() => document.documentElement.scrollWidth);
    /** The header's controls are all on screen. */
    const headerOnScreen = async () => {
      for (const control of [page.getByRole("link", { name: "Alerts" }), page.getByTestId("viewer"), page.getByRole("button", { name: "Sign out" })]) {
        const box = (await control.boundingBox())!;
        expect(box.x).toBeGreaterThanOrEqual(0);
        expect(box.x + box.width).toBeLessThanOrEqual(width);
      }
    };
    /** The table scrolls inside its own region, wider than it. */
    const scrollsInside = (region: Locator) => region.evaluate((el) => el.scrollWidth > el.clientWidth && el.clientWidth <= window.innerWidth);

    await page.goto(linkTo(`/subscriptions/${demoSubscription}`, adminToken));
    await page.locator('[data-testid="chart-per-day"] .recharts-bar-rectangle').first().waitFor();
    await expect.poll(() => page.getByTestId("usage-row").count()).toBeGreaterThan(0);
    expect(await pageWidth()).toBeLessThanOrEqual(width);
    await headerOnScreen();
    expect(await scrollsInside(page.getByRole("region", { name: "Usage per operation" }))).toBe(true);

    await page.getByTestId("tab-ledger").click();
    await expect.poll(() => page.getByTestId("ledger-row").count()).toBe(20);
    expect(await pageWidth()).toBeLessThanOrEqual(width);
    expect(await scrollsInside(page.getByRole("region", { name: "Ledger entries" }))).toBe(true);

    for (const link of ["Ledger", "Stats", "Subscriptions"]) {
      await page.getByRole("link", { name: link }).click();
      await page.waitForTimeout(300);
      expect(await pageWidth(), link).toBeLessThanOrEqual(width);
      await headerOnScreen();
    }
  });

  describe("live balances survive a lost connection", () => {
    it("keeps reconnecting after closes graphql-ws gives up on (1013, then 4500), says so meanwhile, resubscribes and reads the balances again", async () => {
      // /graphql's WebSocket played by the test: the first connection is closed with 1013 (slow
      // consumer), the second with 4500 (graphql-ws treats it as final), the third stays up.
      const page = await freshPage();
      problems!.expect(/WebSocket/);
      const beta = await mintToken({ sub: "customer-beta" });
      const subscription = customers["customer-beta"];
      const connections: { subscribes: number; close: (code: number) => Promise<void> }[] = [];
      await page.routeWebSocket(/\/graphql$/, (ws) => {
        const connection = { subscribes: 0, close: (code: number) => ws.close({ code, reason: "test" }) };
        connections.push(connection);
        const number = connections.length;
        ws.onMessage((text) => {
          const message = JSON.parse(String(text));
          // The console pings every 10 s and reconnects without a pong (console/src/live/connection.ts).
          if (message.type === "ping") ws.send(JSON.stringify({ type: "pong" }));
          if (message.type === "connection_init") {
            if (number === 2) void ws.close({ code: 4500, reason: "Internal error" });
            else ws.send(JSON.stringify({ type: "connection_ack" }));
          }
          if (message.type === "subscribe") connection.subscribes++;
        });
      });
      const balanceReads: number[] = [];
      page.on("request", (request) => {
        if (request.method() === "POST" && request.postData()?.includes("query Balances")) balanceReads.push(Date.now());
      });
      await page.goto(linkTo(`/subscriptions/${subscription}`, beta));
      const state = page.getByTestId("live-state");
      await expect.poll(() => state.getAttribute("data-state"), { timeout: 5_000 }).toBe("live");
      expect(connections[0].subscribes).toBe(1);

      // Lost: the page says so (never silently stale), and keeps trying. The balances read again
      // are counted from the loss: the console may read them as soon as a socket is back, before
      // this test sees the third connection.
      const lostAt = Date.now();
      await connections[0].close(1013);
      await expect.poll(() => state.getAttribute("data-state"), { timeout: 2_000 }).toBe("reconnecting");
      expect(await state.textContent()).toMatch(/reconnecting/);
      await expect.poll(() => connections.length, { timeout: 10_000 }).toBeGreaterThanOrEqual(2);
      // The 4500 close does not end it either: a third connection, with the subscription sent again.
      await expect.poll(() => connections.length, { timeout: 20_000 }).toBe(3);
      await expect.poll(() => connections[2].subscribes, { timeout: 20_000 }).toBe(1);
      await expect.poll(() => state.getAttribute("data-state"), { timeout: 5_000 }).toBe("live");
      // Events were missed while it was down: the balances are read again once it is back.
      await expect.poll(() => balanceReads.filter((at) => at >= lostAt).length, { timeout: 5_000 }).toBeGreaterThanOrEqual(1);
      expect(await page.getByTestId("balance-leads").textContent()).toBe(String(await balanceOf(subscription, "leads")));
    });

    it("sends a subscribe refused as RATE_LIMITED again once its retryAfterSeconds have passed, reconnecting meanwhile", async () => {
      // REQUEST_LIMIT counts subscribes: a refused one is an `error` message with RATE_LIMITED, which
      // used to leave the page without live balances for good. The socket is played by the test.
      const page = await freshPage();
      const beta = await mintToken({ sub: "customer-beta" });
      const subscription = customers["customer-beta"];
      const subscribes: number[] = [];
      await page.routeWebSocket(/\/graphql$/, (ws) => {
        ws.onMessage((text) => {
          const message = JSON.parse(String(text));
          // The console pings every 10 s and reconnects without a pong (console/src/live/connection.ts).
          if (message.type === "ping") ws.send(JSON.stringify({ type: "pong" }));
          if (message.type === "connection_init") ws.send(JSON.stringify({ type: "connection_ack" }));
          if (message.type !== "subscribe") return;
          subscribes.push(Date.now());
          if (subscribes.length === 1) {
            const refusal = { message: "Too many requests: try again in 2 s", extensions: { code: "RATE_LIMITED", retryAfterSeconds: 2 } };
            ws.send(JSON.stringify({ id: message.id, type: "error", payload: [refusal] }));
          }
        });
      });
      await page.goto(linkTo(`/subscriptions/${subscription}`, beta));
      const state = page.getByTestId("live-state");
      await expect.poll(() => subscribes.length, { timeout: 5_000 }).toBe(1);
      await expect.poll(() => state.getAttribute("data-state"), { timeout: 2_000 }).toBe("reconnecting");
      await expect.poll(() => subscribes.length, { timeout: 5_000 }).toBe(2);
      expect(subscribes[1] - subscribes[0]).toBeGreaterThanOrEqual(1_900);
      await expect.poll(() => state.getAttribute("data-state"), { timeout: 5_000 }).toBe("live");
    });

    it("comes back by itself after the server restarts, and shows a change made meanwhile without a reload", async () => {
      const dir = mkdtempSync(join(tmpdir(), "console-restart-"));
      const port = String(await freePort());
      const env = { PGLITE_DIR: join(dir, "pglite"), CONSOLE_BUILD: "off", PORT: port };
      let restarted: SpawnedServer | undefined;
      const first = await spawnServer(env, 120_000);
      try {
        const link = /Console \(user\):\s+(\S+)/.exec(first.output())![1].replace("http://localhost", "http://127.0.0.1");
        const subscription = /Demo subscription: (\S+)/.exec(first.output())![1];
        const page = await freshPage();
        // The browser reports the refused connections while the server is down.
        problems!.expect(/WebSocket|ERR_CONNECTION_REFUSED/);
        await page.goto(link.replace(/\/console#/, `/console/subscriptions/${subscription}#`));
        const state = page.getByTestId("live-state");
        await expect.poll(() => state.getAttribute("data-state"), { timeout: 5_000 }).toBe("live");
        // The page has all it loads (the chart library is fetched when the usage arrives): a server
        // stopped in the middle of that download would fail the page, not the live feed under test.
        await page.getByTestId("chart-per-day").waitFor();
        await page.evaluate(() => ((window as unknown as { marker: number }).marker = 5));

        first.child.kill("SIGTERM");
        await first.exited;
        await expect.poll(() => state.getAttribute("data-state"), { timeout: 5_000 }).toBe("reconnecting");
        await page.waitForTimeout(3_000); // down for a while: graphql-ws alone gave up after a few tries here
        restarted = await spawnServer(env, 120_000);
        const url = `http://127.0.0.1:${port}/graphql`;
        const granted = await postGraphQL(
          url,
          `mutation ($input: GrantCreditsInput!) { grantCredits(input: $input) { balanceAfter } }`,
          { input: { subscriptionId: subscription, type: "leads", amount: 11, reason: "While the page was reconnecting" } },
          { token: admin },
        );
        const expected = String(granted.body.data.grantCredits.balanceAfter);
        await expect.poll(() => state.getAttribute("data-state"), { timeout: 30_000 }).toBe("live");
        await expect.poll(() => page.getByTestId("balance-leads").textContent(), { timeout: 5_000 }).toBe(expected);
        // And pushed again from then on.
        const again = await postGraphQL(
          url,
          `mutation ($input: GrantCreditsInput!) { grantCredits(input: $input) { balanceAfter } }`,
          { input: { subscriptionId: subscription, type: "leads", amount: 2, reason: "After the restart" } },
          { token: admin },
        );
        await expect.poll(() => page.getByTestId("balance-leads").textContent(), { timeout: 10_000 }).toBe(String(again.body.data.grantCredits.balanceAfter));
        expect(await page.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(5);
      } finally {
        await context?.close();
        context = undefined;
        for (const s of [first, restarted]) {
          if (s && s.child.exitCode === null) {
            s.child.kill("SIGTERM");
            await s.exited;
          }
        }
        rmSync(dir, { recursive: true, force: true });
      }
    }, 120_000);
  });

  it("keeps the grants in step with the live balances: a charge and a grant made elsewhere, and an expiry that passes", async () => {
    const page = await freshPage();
    const beta = await mintToken({ sub: "customer-beta" });
    const subscription = customers["customer-beta"];
    await page.goto(linkTo(`/subscriptions/${subscription}`, beta));
    await expect.poll(() => page.locator(".live-dot.on").count(), { timeout: 5_000 }).toBe(1);
    await page.getByTestId("grants").locator("summary").click();
    /** The leads grants' remaining credits, summed as the grants panel shows them. */
    const leadsInGrants = () =>
      page.getByTestId("grant-row").evaluateAll((rows) =>
        rows.filter((r) => r.children[0].textContent === "leads").reduce((sum, r) => sum + Number(r.children[2].textContent!.replace(/,/g, "")), 0),
      );
    await expect.poll(leadsInGrants).toBe(await balanceOf(subscription, "leads"));

    // A charge made elsewhere (a metered call through the API): the card and the grants move together.
    const call = await gql(`mutation ($s: ID!) { searchLeads(subscriptionId: $s, input: { query: "plumbers", limit: 3 }) { total } }`, { s: subscription }, beta);
    expect(call.body.errors).toBeUndefined();
    const after = await balanceOf(subscription, "leads");
    await expect.poll(() => page.getByTestId("balance-leads").textContent(), { timeout: 10_000 }).toBe(String(after));
    await expect.poll(leadsInGrants, { timeout: 5_000 }).toBe(after);

    // A promotional grant made elsewhere, expiring in a few seconds: listed, then gone once it expires.
    const expiresAt = new Date(Date.now() + 6_000).toISOString();
    const grant = await gql(
      `mutation ($input: GrantCreditsInput!) { grantCredits(input: $input) { balanceAfter } }`,
      { input: { subscriptionId: subscription, type: "ai", amount: 5, reason: "Short promo", category: "PROMOTIONAL", priority: 10, expiresAt } },
      admin,
    );
    expect(grant.body.errors).toBeUndefined();
    const promo = page.getByTestId("grant-row").filter({ hasText: "Short promo" });
    await expect.poll(() => promo.count(), { timeout: 5_000 }).toBe(1);
    expect(await page.getByTestId("next-expiry").count()).toBe(1);
    await expect.poll(() => promo.count(), { timeout: 10_000 }).toBe(0);
    // No "next expiry" in the past.
    expect(await page.getByTestId("next-expiry").count()).toBe(0);
  });

  it("an admin can refund only this subscription's charges from its page, and a new action clears the last one's message", async () => {
    const page = await freshPage();
    problems!.expect(/HTTP 400|status of 400/);
    const refunds: string[] = [];
    page.on("request", (request) => {
      if (request.method() === "POST" && request.postData()?.includes("refundCharge")) refunds.push(request.postData()!);
    });
    // A charge of the demo subscription, pasted on customer-beta's page: refused in the form, saying
    // why, nothing refunded.
    // An older charge of a few credits (the newest may have been refunded by another test).
    const debit = (await ledgerOf(demoSubscription)).filter((e) => e.kind === "DEBIT" && Math.abs(e.amount) >= 3)[2];
    const demoBefore = await balanceOf(demoSubscription, debit.type);
    const adminToken = new URL(adminLink).hash.slice("#token=".length);
    await page.goto(linkTo(`/subscriptions/${customers["customer-beta"]}`, adminToken));
    await page.getByTestId("admin-actions").waitFor();
    page.setDefaultTimeout(10_000);
    await page.getByTestId("action-refund").click();
    await page.getByTestId("action-entry").fill(debit.id);
    await page.getByTestId("action-amount").fill("");
    await page.getByTestId("action-reason").fill("Wrong page refund");
    await page.getByTestId("action-submit").click();
    const refusal = page.getByTestId("admin-actions").getByRole("alert");
    await expect.poll(() => refusal.textContent(), { timeout: 5_000 }).toContain(`is not a charge (DEBIT entry) of subscription ${customers["customer-beta"]}`);
    expect(refunds).toEqual([]);
    expect(await balanceOf(demoSubscription, debit.type)).toBe(demoBefore);

    // On its own subscription's page: refunded, the message naming the amount and the subscription.
    await page.goto(linkTo(`/subscriptions/${demoSubscription}`, adminToken));
    await page.getByTestId("admin-actions").waitFor();
    await page.getByTestId("action-refund").click();
    await page.getByTestId("action-entry").fill(debit.id);
    await page.getByTestId("action-amount").fill("1");
    await page.getByTestId("action-reason").fill("Partial goodwill");
    await page.getByTestId("action-submit").click();
    await expect
      .poll(() => page.getByTestId("notice").textContent(), { timeout: 5_000 })
      .toBe(`Refunded 1 credit (${debit.type}) to subscription ${demoSubscription} (owner ${DEMO_USER_ID}): Partial goodwill`);
    expect(await refusal.count()).toBe(0);

    // Too much now: the server's refusal, and no "Refunded" message left next to it.
    await page.getByTestId("action-amount").fill("100000");
    await page.getByTestId("action-reason").fill("Too much");
    await page.getByTestId("action-submit").click();
    await expect.poll(() => refusal.textContent(), { timeout: 5_000 }).toMatch(/HTTP 400/);
    // The message's live region stays in the page (see SubscriptionPage.tsx), emptied.
    expect(await page.getByTestId("notice").textContent()).toBe("");
  });

  it("an admin opens a subscription on one of the server's plans, picked from a list (an unknown name warned about)", async () => {
    const page = await freshPage();
    await page.goto(adminLink);
    const plan = page.getByTestId("create-plan");
    await plan.waitFor();
    // The configured plans, the first by default, and "other…".
    expect(await plan.locator("option").allTextContents()).toEqual(["team: 200 credits (leads) every 30d", "basic: 100 credits (ai) every 1mo", "other…"]);
    await expect.poll(() => plan.inputValue()).toBe("team");

    await plan.selectOption({ label: "other…" });
    await page.getByTestId("create-plan-name").fill("teams");
    await expect.poll(() => page.getByTestId("create-plan-warning").textContent()).toMatch(/“teams” is not one of this server's plans \(team, basic\).*no plan credits/);
    await plan.selectOption("basic");
    expect(await page.getByTestId("create-plan-warning").count()).toBe(0);

    const form = page.getByTestId("create-subscription");
    await form.getByLabel("Owner id").fill("customer-delta");
    await form.getByRole("button", { name: "Open" }).click();
    await page.getByTestId("subscription-page").waitFor();
    const id = page.url().split("/").pop()!;
    const res = await gql(`query ($id: ID!) { subscription(id: $id) { plan grants { category type amount } } }`, { id }, admin);
    expect(res.body.data.subscription.plan).toBe("basic");
    expect(res.body.data.subscription.grants).toContainEqual({ category: "PLAN", type: "ai", amount: 100 });
  });

  it("an admin grants promotional, expiring credits with a priority, each term checked in the form first", async () => {
    const page = await freshPage();
    const grants: string[] = [];
    page.on("request", (request) => {
      if (request.method() === "POST" && request.postData()?.includes("grantCredits")) grants.push(request.postData()!);
    });
    const subscription = customers["customer-alpha"];
    const adminToken = new URL(adminLink).hash.slice("#token=".length);
    await page.goto(linkTo(`/subscriptions/${subscription}`, adminToken));
    await page.getByTestId("admin-actions").waitFor();
    expect(await page.getByTestId("action-priority").inputValue()).toBe("50");
    expect(await page.getByTestId("action-category").inputValue()).toBe("PAID");

    await page.getByTestId("action-type").selectOption("skiptrace");
    await page.getByTestId("action-amount").fill("7");
    await page.getByTestId("action-reason").fill("Spring promo");
    await page.getByTestId("action-category").selectOption("PROMOTIONAL");
    await page.getByTestId("action-priority").fill("101");
    await page.getByTestId("action-submit").click();
    await expect.poll(() => page.getByTestId("action-priority-problem").textContent()).toMatch(/^Priority must be a whole number from 0 to 100/);
    expect(await page.evaluate(() => document.activeElement?.getAttribute("data-testid"))).toBe("action-priority");
    await page.getByTestId("action-priority").fill("10");
    await page.getByTestId("action-expiry").fill("2001-01-01T10:00");
    await page.getByTestId("action-submit").click();
    await expect.poll(() => page.getByTestId("action-expiry-problem").textContent()).toMatch(/^Expiry must be in the future/);
    expect(grants).toEqual([]);

    const local = "2031-06-15T09:30";
    await page.getByTestId("action-expiry").fill(local);
    await page.getByTestId("action-submit").click();
    await expect.poll(() => page.getByTestId("notice").textContent()).toMatch(/^Granted 7 credits \(skiptrace\) \(PROMOTIONAL, priority 10, expiring .*\): Spring promo$/);
    const expectedExpiry = await page.evaluate((text) => new Date(text).toISOString(), local);
    const res = await gql(`query ($id: ID!) { subscription(id: $id) { grants(type: "skiptrace") { category priority expiresAt amount reason } } }`, { id: subscription }, admin);
    expect(res.body.data.subscription.grants).toContainEqual({ category: "PROMOTIONAL", priority: 10, expiresAt: expectedExpiry, amount: 7, reason: "Spring promo" });
  });

  it("prices one operation of a document that has several, named in the calculator", async () => {
    const page = await freshPage();
    problems!.expect(/HTTP 400|status of 400/);
    await page.goto(linkTo(`/subscriptions/${demoSubscription}`, new URL(userLink).hash.slice("#token=".length)));
    await page.getByTestId("tab-calculator").click();
    await page.getByTestId("calc-query").fill(
      `mutation A { searchLeads(subscriptionId: "${demoSubscription}", input: { query: "roofers", limit: 7 }) { total } }\n` +
        `mutation B { searchLeads(subscriptionId: "${demoSubscription}", input: { query: "roofers", limit: 12 }) { total } }`,
    );
    await page.getByTestId("calc-run").click();
    await expect.poll(() => page.getByTestId("calculator").getByRole("alert").textContent()).toMatch(/operationName/);
    await page.getByTestId("calc-operation-name").fill("B");
    await page.getByTestId("calc-run").click();
    await expect.poll(() => page.getByTestId("calc-total-leads").textContent()).toBe("12 credits (leads)");
    expect(await page.getByTestId("calculator").getByRole("alert").count()).toBe(0);
  });

  it("signs in with Enter in the token field, and marks a balance below its low-balance threshold", async () => {
    const page = await freshPage();
    const subscription = customers["customer-beta"];
    const leads = await balanceOf(subscription, "leads");
    const threshold = await gql(
      `mutation ($input: LowBalanceThresholdInput!) { setLowBalanceThreshold(input: $input) { lowBalanceThreshold } }`,
      { input: { subscriptionId: subscription, type: "leads", lowBalance: leads + 1 } },
      admin,
    );
    expect(threshold.body.errors).toBeUndefined();
    await page.goto(`${server.url}/console`);
    await page.getByTestId("token-input").waitFor();
    await page.keyboard.type(await mintToken({ sub: "customer-beta" }));
    await page.keyboard.press("Enter");
    const row = page.getByTestId("subscription-row");
    await row.waitFor();
    await expect.poll(() => row.getByTestId("low-leads").textContent()).toBe(`▲ low: below its alert threshold of ${leads + 1}`);
    expect(await row.locator('.card[data-type="leads"]').getAttribute("data-low")).toBe("true");
    expect(await row.getByTestId("low-ai").count()).toBe(0);
  });

  it("at a phone's width, long alert details wrap inside the alerts lists: the page never scrolls sideways", async () => {
    const width = 390;
    const subscription = customers["customer-beta"];
    const beta = await mintToken({ sub: "customer-beta" });
    // An alert with details: the leads balance crosses below its threshold.
    const leads = await balanceOf(subscription, "leads");
    await gql(
      `mutation ($input: LowBalanceThresholdInput!) { setLowBalanceThreshold(input: $input) { lowBalanceThreshold } }`,
      { input: { subscriptionId: subscription, type: "leads", lowBalance: leads - 1 } },
      admin,
    );
    const call = await gql(`mutation ($s: ID!) { searchLeads(subscriptionId: $s, input: { query: "painters", limit: 3 }) { total } }`, { s: subscription }, beta);
    expect(call.body.errors).toBeUndefined();
    const alertsOf = async () =>
      (await gql(`query ($s: ID) { creditAlerts(subscriptionId: $s, first: 50) { edges { node { kind details } } } }`, { s: subscription }, admin)).body.data
        .creditAlerts.edges as { node: { details: unknown } }[];
    await expect.poll(async () => (await alertsOf()).filter((e) => JSON.stringify(e.node.details ?? "").length > 60).length, { timeout: 10_000 }).toBeGreaterThan(0);

    const page = await freshPage({ width, height: 844 });
    const pageWidth = () => page.evaluate(() => document.documentElement.scrollWidth);
    await page.goto(linkTo(`/subscriptions/${subscription}`, beta));
    await page.getByTestId("tab-alerts").click();
    await page.locator('[data-testid="alerts"] li code').first().waitFor();
    expect(await pageWidth()).toBeLessThanOrEqual(width);

    const adminToken = new URL(adminLink).hash.slice("#token=".length);
    await page.goto(linkTo("/alerts", adminToken));
    await page.locator('[data-testid="alerts"] li code').first().waitFor();
    expect(await pageWidth()).toBeLessThanOrEqual(width);
  });
});
