/**
 * The console when things go wrong, in a real chromium (playwright-core) against the real entry
 * point (src/main.ts in a child process) on a fresh PGlite database with the development mode's demo
 * subscription (100 credits of each type). What an outside audit found, each checked here:
 *
 * 1. the chart chunk (loaded on demand) that cannot be fetched (a 404 after a deploy, a server
 *    restarting) leaves the rest of the page as it was, with a Retry where the charts go that
 *    brings them once the chunk answers; a page whose render throws shows why, with a retry, under
 *    the console's header: the page is never left blank;
 * 2. after a reconnection the badge says "live" only once the balances were read again (never a
 *    stale figure next to "● live"), and a balance and what running calls hold of it change together
 *    (a slow call's hold, then its settlement);
 * 3. an admin action whose answer is lost ("the server did not answer") has a Retry button that
 *    sends the same action again with the same Idempotency-Key: the credits are granted once;
 * 4. an empty priority in the grant form sends no priority (the API's default, 50); a bad one is
 *    still refused in the form.
 *
 * Any console error, uncaught exception, failed request or HTTP error status the test did not ask
 * for fails it.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Page, Route, WebSocketRoute } from "playwright-core";
import { chromiumAvailable, loseFirstAnswer } from "../helpers/browser.js";
import { startConsoleSession, type ConsoleSession } from "../helpers/console-session.js";
import { postGraphQL } from "../helpers/test-app.js";

const available = chromiumAvailable();

/** How long a call made with `x-simulate-failure: slow` runs (its credits held meanwhile). */
const SLOW_CALL_MS = 4_000;
/** The chart library's chunk, as Vite names it (a content hash in the name). */
const CHART_CHUNK = /\/console\/assets\/Charts-[^/]+\.js$/;

describe.skipIf(!available)("the console when requests fail, in chromium", () => {
  let session: ConsoleSession;

  beforeAll(async () => {
    // The spawned server takes the test process's environment: SIMULATE_FAILURES lets a test make a
    // slow call (x-simulate-failure: slow) whose credits stay held meanwhile.
    process.env.SIMULATE_FAILURES = "1";
    process.env.SIMULATE_SLOW_MS = String(SLOW_CALL_MS);
    session = await startConsoleSession("console-resilience");
    // Calls of each credit type, for the usage and the stats.
    for (const query of [
      `mutation ($s: ID!) { searchLeads(subscriptionId: $s, input: { query: "roofers", limit: 3 }) { total } }`,
      `mutation ($s: ID!) { runAiTask(subscriptionId: $s, input: { prompt: "Summarise", maxTokens: 300 }) { output } }`,
    ]) {
      const res = await session.gql(query, { s: session.demoSubscription }, session.user);
      expect(res.body.errors).toBeUndefined();
    }
  }, 300_000);

  afterEach(() => {
    expect(session.problems?.list ?? []).toEqual([]);
  });

  afterAll(() => session?.close());

  /** The console's shell is there: its header, with who is signed in. */
  async function shellIsThere(page: Page): Promise<void> {
    expect(await page.getByTestId("viewer").count()).toBe(1);
    expect(await page.locator("#root").evaluate((root) => root.childElementCount)).toBeGreaterThan(0);
  }

  describe("1. the page is never left blank", () => {
    it("a chart chunk that answers 404 (an old build's asset): the subscription's page stays, and Retry brings the charts", async () => {
      const page = await session.freshPage();
      session.problems!.expect(/Charts-|dynamically imported module|status of 404/);
      let refused = 0;
      const refuse = (route: Route) => (refused++, route.fulfill({ status: 404, contentType: "text/plain", body: "Not found" }));
      await page.route(CHART_CHUNK, refuse);
      await page.goto(session.linkTo(`/subscriptions/${session.demoSubscription}`, session.user));

      // Where the charts go: why they are missing, and a Retry; the rest of the page as it was.
      const usage = page.getByTestId("usage");
      await usage.getByTestId("chart-error").first().waitFor({ timeout: 10_000 });
      expect(refused).toBeGreaterThan(0);
      await expect.poll(() => usage.getByTestId("usage-row").count()).toBeGreaterThan(0);
      await shellIsThere(page);
      expect(await page.getByTestId("subscription-page").count()).toBe(1);
      expect(await page.getByTestId("balance-leads").textContent()).toBe(String(await session.balanceOf(session.demoSubscription, "leads")));
      expect(await page.getByTestId("tab-ledger").count()).toBe(1);
      const retry = usage.getByTestId("chart-error").first().getByRole("button", { name: "Retry" });
      expect(await retry.count()).toBe(1);
      // Retrying while the chunk still fails says so again (and does not blank the page either).
      await retry.click();
      await expect.poll(() => refused, { timeout: 5_000 }).toBeGreaterThan(1);
      await usage.getByTestId("chart-error").first().waitFor();

      // The chunk answers again: one Retry brings every chart of the page.
      await page.unroute(CHART_CHUNK, refuse);
      await usage.getByTestId("chart-error").first().getByRole("button", { name: "Retry" }).click();
      await page.locator('[data-testid="chart-per-day"] .recharts-bar-rectangle').first().waitFor({ timeout: 10_000 });
      await page.getByTestId("chart-per-operation").waitFor();
      expect(await page.getByTestId("chart-error").count()).toBe(0);
      // Still the same page, never reloaded.
      await shellIsThere(page);
      expect(await page.getByTestId("subscription-page").count()).toBe(1);
    });

    it("a chart chunk whose fetch fails (the server restarting): the Stats page stays, and Retry brings the charts", async () => {
      const page = await session.freshPage();
      session.problems!.expect(/Charts-|dynamically imported module|ERR_CONNECTION_REFUSED/);
      const refuse = (route: Route) => route.abort("connectionrefused");
      await page.route(CHART_CHUNK, refuse);
      await page.goto(session.linkTo("/stats", session.admin));

      await page.getByTestId("chart-error").first().waitFor({ timeout: 10_000 });
      await shellIsThere(page);
      expect(await page.getByTestId("stats-page").count()).toBe(1);
      await expect.poll(() => page.locator('[data-testid="accuracy"] tbody tr').count()).toBeGreaterThan(0);
      // Each of the page's four charts says so; any one's Retry brings them all.
      expect(await page.getByTestId("chart-error").count()).toBe(4);
      expect(await page.getByTestId("chart-error").first().textContent()).toMatch(/could not be loaded/);

      await page.unroute(CHART_CHUNK, refuse);
      await page.getByTestId("chart-error").nth(2).getByRole("button", { name: "Retry" }).click();
      for (const chart of ["chart-per-day", "chart-top-operations", "chart-top-subscriptions"]) {
        await page.locator(`[data-testid="${chart}"] .recharts-bar-rectangle`).first().waitFor({ timeout: 10_000 });
      }
      expect(await page.getByTestId("chart-error").count()).toBe(0);
      await shellIsThere(page);
    });

    it("a page whose render throws shows why under the console's header, and its Retry draws it again", async () => {
      const page = await session.freshPage();
      // React reports the error it caught; the page shows it.
      session.problems!.expect(/perOperation|Cannot read properties of null|TypeError|Minified React error|The above error occurred/);
      // An answer the Stats page cannot draw (a list that is null).
      const broken = (route: Route) =>
        route.request().postData()?.includes("query Stats")
          ? route.fulfill({ status: 200, contentType: "application/json", body: JSON.stringify({ data: { perDay: [], perOperation: null, perOperationByType: [], perSubscriptionByType: [] } }) })
          : route.continue();
      await page.route("**/graphql", broken);
      await page.goto(session.linkTo("/stats", session.admin));

      const problem = page.getByTestId("page-error");
      await problem.waitFor({ timeout: 10_000 });
      await shellIsThere(page);
      expect(await problem.getAttribute("role")).toBe("alert");
      expect(await problem.getByRole("button", { name: "Retry" }).count()).toBe(1);
      // The navigation still works from there.
      expect(await page.getByRole("link", { name: "Ledger" }).count()).toBe(1);

      await page.unroute("**/graphql", broken);
      await problem.getByRole("button", { name: "Retry" }).click();
      await page.getByTestId("stats-page").waitFor();
      await expect.poll(() => page.locator('[data-testid="accuracy"] tbody tr').count()).toBeGreaterThan(0);
      expect(await page.getByTestId("page-error").count()).toBe(0);
    });

    // An outside audit at scale: on a ledger never analysed, the Usage panel stayed empty for the
    // 30 s its report took, then showed the server's "narrow the window (from, to)", which the
    // console's fixed 30 days cannot do.
    it("a usage report still running says Loading; one the server gave up on says what the reader can do", async () => {
      const page = await session.freshPage();
      session.problems!.expect(/status of 400|HTTP 400/);
      let release!: () => void;
      const answered = new Promise<void>((resolve) => (release = resolve));
      const slowThenGivenUp = async (route: Route) => {
        if (!route.request().postData()?.includes("query SubscriptionUsage")) return route.fallback();
        await answered;
        await route.fulfill({
          status: 400,
          contentType: "application/json",
          body: JSON.stringify({
            errors: [{ message: "creditUsage did not finish within 30 s: narrow the window (from, to), or try again when the server is less busy", extensions: { code: "BAD_USER_INPUT", requestId: "r" } }],
          }),
        });
      };
      await page.route("**/graphql", slowThenGivenUp);
      await page.goto(session.linkTo(`/subscriptions/${session.demoSubscription}`, session.user));
      const usage = page.getByTestId("usage");
      await usage.getByTestId("report-loading").waitFor({ timeout: 10_000 });
      expect(await usage.getAttribute("aria-busy")).toBe("true");
      expect(await usage.getByTestId("report-loading").textContent()).toBe("Loading usage…");

      release();
      await usage.getByTestId("report-timeout-hint").waitFor({ timeout: 10_000 });
      expect(await usage.getAttribute("aria-busy")).toBe("false");
      expect(await usage.getByRole("alert").textContent()).toMatch(/did not finish within 30 s/);
      expect(await usage.getByTestId("report-timeout-hint").textContent()).toMatch(/always shows the last 30 days.*ANALYZE/);
      expect(await usage.getByTestId("report-loading").count()).toBe(0);
      await page.unroute("**/graphql", slowThenGivenUp);
    });
  });

  describe("2. live balances never look live while stale", () => {
    it("after a reconnection the badge turns live only with the balances read again", async () => {
      const page = await session.freshPage();
      session.problems!.expect(/WebSocket/);
      // /graphql's WebSocket played by the test, so that it can be lost at will.
      const sockets: WebSocketRoute[] = [];
      await page.routeWebSocket(/\/graphql$/, (ws) => {
        sockets.push(ws);
        ws.onMessage((text) => {
          const message = JSON.parse(String(text));
          // The console pings every 10 s and reconnects without a pong (console/src/live/connection.ts).
          if (message.type === "ping") ws.send(JSON.stringify({ type: "pong" }));
          if (message.type === "connection_init") ws.send(JSON.stringify({ type: "connection_ack" }));
        });
      });
      // The balances' read takes a while once the connection is back, as a busy server's would.
      let slowReads = false;
      await page.route("**/graphql", async (route) => {
        if (slowReads && route.request().postData()?.includes("query Balances")) await new Promise((r) => setTimeout(r, 1_500));
        await route.continue();
      });
      await page.goto(session.linkTo(`/subscriptions/${session.demoSubscription}`, session.user));
      const state = page.getByTestId("live-state");
      await expect.poll(() => state.getAttribute("data-state"), { timeout: 5_000 }).toBe("live");
      const before = await session.balanceOf(session.demoSubscription, "leads");
      expect(await page.getByTestId("balance-leads").textContent()).toBe(String(before));

      slowReads = true;
      await sockets[0].close({ code: 1013, reason: "test" });
      await expect.poll(() => state.getAttribute("data-state"), { timeout: 2_000 }).toBe("reconnecting");
      // Meanwhile the balance changes (its event is missed: the connection is down).
      const granted = await session.gql(
        `mutation ($input: GrantCreditsInput!) { grantCredits(input: $input) { balanceAfter } }`,
        { input: { subscriptionId: session.demoSubscription, type: "leads", amount: 9, reason: "While reconnecting" } },
        session.admin,
      );
      const after = granted.body.data.grantCredits.balanceAfter;
      expect(after).toBe(before + 9);

      // The balance shown at the moment the badge first says live again.
      const shownWhenLive = await page.evaluate(
        () =>
          new Promise<string | null>((resolve) => {
            const check = () => {
              if (document.querySelector('[data-testid="live-state"]')?.getAttribute("data-state") !== "live") return false;
              resolve(document.querySelector('[data-testid="balance-leads"]')?.textContent ?? null);
              return true;
            };
            if (check()) return;
            const observer = new MutationObserver(() => void (check() && observer.disconnect()));
            observer.observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
          }),
      );
      expect(sockets.length).toBeGreaterThanOrEqual(2);
      expect(shownWhenLive).toBe(String(after));
      expect(await state.getAttribute("data-state")).toBe("live");
    });

    it("a balance and the credits held of it change together: a slow call's hold, then its settlement", async () => {
      const page = await session.freshPage();
      // The balances' reads take a while, as a busy server's would: a pushed balance must wait for its held.
      await page.route("**/graphql", async (route) => {
        if (route.request().postData()?.includes("query Balances")) await new Promise((r) => setTimeout(r, 700));
        await route.continue();
      });
      await page.goto(session.linkTo(`/subscriptions/${session.demoSubscription}`, session.user));
      await expect.poll(() => page.getByTestId("live-state").getAttribute("data-state"), { timeout: 5_000 }).toBe("live");
      const before = await session.balanceOf(session.demoSubscription, "leads");
      await expect.poll(() => page.getByTestId("balance-leads").textContent()).toBe(String(before));
      expect(await page.getByTestId("held-leads").count()).toBe(0);

      // Every state of the card, as the page draws it.
      await page.evaluate(() => {
        const states: { balance: string | null; held: string | null }[] = [];
        (window as unknown as { cardStates: typeof states }).cardStates = states;
        const record = () => {
          const balance = document.querySelector('[data-testid="balance-leads"]')?.textContent ?? null;
          const held = document.querySelector('[data-testid="held-leads"]')?.textContent ?? null;
          const last = states[states.length - 1];
          if (!last || last.balance !== balance || last.held !== held) states.push({ balance, held });
        };
        record();
        new MutationObserver(record).observe(document.body, { subtree: true, childList: true, characterData: true });
      });

      // A call that runs SLOW_CALL_MS, holding its estimate (40 leads) meanwhile.
      const call = postGraphQL(
        `${session.server.url}/graphql`,
        `mutation ($s: ID!) { searchLeads(subscriptionId: $s, input: { query: "slow painters", limit: 40 }) { total } }`,
        { s: session.demoSubscription },
        { token: session.user, headers: { "x-simulate-failure": "slow" } },
      );
      await expect.poll(() => page.getByTestId("held-leads").textContent(), { timeout: SLOW_CALL_MS - 1_000 }).toBe("40 held by running calls");
      const result = await call;
      expect(result.body.errors).toBeUndefined();
      const settled = await session.balanceOf(session.demoSubscription, "leads");
      // It cost less than it held: a RELEASE entry, so a pushed event, gave the rest back.
      expect(settled).toBeGreaterThan(before - 40);
      await expect.poll(() => page.getByTestId("held-leads").count(), { timeout: 10_000 }).toBe(0);
      expect(await page.getByTestId("balance-leads").textContent()).toBe(String(settled));

      const states = await page.evaluate(() => (window as unknown as { cardStates: { balance: string | null; held: string | null }[] }).cardStates);
      expect(states[0]).toEqual({ balance: String(before), held: null });
      // The balance less the hold, only with the hold next to it; the settled balance, only without.
      const held = "40 held by running calls";
      expect(states.filter((s) => s.balance === String(before - 40) && s.held !== held)).toEqual([]);
      expect(states.filter((s) => s.balance === String(settled) && s.held !== null)).toEqual([]);
      expect(states).toContainEqual({ balance: String(before - 40), held });
      expect(states[states.length - 1]).toEqual({ balance: String(settled), held: null });
    });
  });

  it("3. an admin action whose answer was lost has a Retry, which sends it again with the same Idempotency-Key: granted once", async () => {
    const page = await session.freshPage();
    session.problems!.expect(/ERR_CONNECTION_RESET/);
    // The server acts, and its answer never reaches the page.
    const keys = await loseFirstAnswer(page, "GrantCredits");
    await page.goto(session.linkTo(`/subscriptions/${session.demoSubscription}`, session.admin));
    const form = page.getByTestId("admin-actions");
    await form.waitFor();
    const before = await session.balanceOf(session.demoSubscription, "ai");
    await page.getByTestId("action-type").selectOption("ai");
    await page.getByTestId("action-amount").fill("5");
    await page.getByTestId("action-reason").fill("Lost answer");
    await page.getByTestId("action-submit").click();

    const failure = form.locator('.error[role="alert"]:not(.field-problem)');
    await expect.poll(() => failure.textContent(), { timeout: 10_000 }).toMatch(/^network error: The server did not answer/);
    // It did act: the answer was lost, not the grant.
    expect(await session.balanceOf(session.demoSubscription, "ai")).toBe(before + 5);
    const retry = failure.getByRole("button", { name: "Retry" });
    expect(await retry.count()).toBe(1);
    await retry.click();

    await expect.poll(() => page.getByTestId("notice").textContent(), { timeout: 10_000 }).toBe("Granted 5 credits (ai): Lost answer");
    expect(keys).toHaveLength(2);
    expect(keys[0]).toMatch(/^console-/);
    expect(keys[1]).toBe(keys[0]);
    // Granted once: the retry was answered with the first send's outcome.
    expect(await session.balanceOf(session.demoSubscription, "ai")).toBe(before + 5);
    await expect.poll(() => page.getByTestId("balance-ai").textContent(), { timeout: 10_000 }).toBe(String(before + 5));
    expect(await failure.count()).toBe(0);
  });

  it("4. an empty priority grants at the API's default (50), sending none; a bad one is still refused in the form", async () => {
    const page = await session.freshPage();
    const sent: Record<string, unknown>[] = [];
    page.on("request", (request) => {
      if (request.method() === "POST" && request.postData()?.includes("mutation GrantCredits")) sent.push(request.postDataJSON().variables.input);
    });
    await page.goto(session.linkTo(`/subscriptions/${session.demoSubscription}`, session.admin));
    await page.getByTestId("admin-actions").waitFor();
    await page.getByTestId("action-type").selectOption("skiptrace");
    await page.getByTestId("action-amount").fill("3");
    await page.getByTestId("action-reason").fill("No priority typed");

    // Still refused: not a whole number from 0 to 100.
    for (const bad of ["abc", "101", "-1", "5.5"]) {
      await page.getByTestId("action-priority").fill(bad);
      await page.getByTestId("action-submit").click();
      await expect.poll(() => page.getByTestId("action-priority-problem").textContent()).toMatch(/^Priority must be a whole number from 0 to 100/);
    }
    expect(sent).toEqual([]);

    await page.getByTestId("action-priority").fill("");
    expect(await page.getByTestId("action-priority-problem").count()).toBe(0);
    expect(await page.getByTestId("action-priority").getAttribute("aria-invalid")).toBeNull();
    await page.getByTestId("action-submit").click();
    await expect.poll(() => page.getByTestId("notice").textContent(), { timeout: 10_000 }).toBe("Granted 3 credits (skiptrace): No priority typed");
    expect(sent).toHaveLength(1);
    expect(sent[0]).not.toHaveProperty("priority");
    const res = await session.gql(
      `query ($id: ID!) { subscription(id: $id) { grants(type: "skiptrace") { priority amount reason } } }`,
      { id: session.demoSubscription },
      session.admin,
    );
    expect(res.body.data.subscription.grants).toContainEqual({ priority: 50, amount: 3, reason: "No priority typed" });
  });
});
