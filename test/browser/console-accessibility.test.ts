/**
 * What an outside accessibility audit of the console found (axe-core and keyboard-only use), each
 * checked in a real chromium (playwright-core) against the real entry point (src/main.ts in a child
 * process) on a fresh PGlite database with the development mode's demo subscription:
 *
 * 1. axe (WCAG 2 A and AA rules, and a page's one h1) finds nothing on the main pages of a customer
 *    and an admin: colour contrast above all, headings on error pages, charts with a name (and the
 *    charts of credits by type as a table too);
 * 2. each page has its own title, and after a navigation inside the console the new page's h1 has
 *    the focus;
 * 3. a balance pushed over the WebSocket is announced politely ("leads balance 82"), from a live
 *    region that was in the page (empty) before;
 * 4. Enter on the admin's Grant with an empty reason says so next to the field (role=alert, the
 *    field aria-invalid and described by it) and focuses it, with nothing sent; "Open a subscription"
 *    likewise for its owner id; a "-" typed first in Adjust's delta is no error until the field is left;
 * 5. paging the ledger to its last page with the keyboard leaves the focus on "← Newer" (not the
 *    page's body), and the page number is announced;
 * 6. the calculator's answer is a status region, its totals read apart ("…(ai), … (leads)");
 * 7. a success message is set in a live region already in the page; "refund…" names its entry and
 *    takes the focus to the Refund form; the customer's card has a real link; the admin's search
 *    says how many it found in a status region.
 *
 * Any console error, uncaught exception, failed request or HTTP error status the test did not ask
 * for fails it.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Page } from "playwright-core";
import { chromiumAvailable } from "../helpers/browser.js";
import { startConsoleSession, type ConsoleSession } from "../helpers/console-session.js";

const available = chromiumAvailable();
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const CONSOLE_TITLE = "graphql-credits console";

interface Violation {
  id: string;
  targets: string[];
  summary: string;
}

/**
 * axe's violations on the page as it is: WCAG 2 A and AA, and a page's one h1 (a best practice).
 * axe is evaluated through the DevTools protocol: the console's Content-Security-Policy refuses an
 * inline script tag.
 */
async function axeViolations(page: Page): Promise<Violation[]> {
  if (!(await page.evaluate(() => "axe" in window))) await page.evaluate(AXE_SOURCE);
  return page.evaluate(async () => {
    type AxeResult = { violations: { id: string; nodes: { target: string[]; failureSummary?: string }[] }[] };
    const axe = (window as unknown as { axe: { run(context: Document, options: object): Promise<AxeResult> } }).axe;
    const wcag = await axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa"] }, resultTypes: ["violations"] });
    const heading = await axe.run(document, { runOnly: { type: "rule", values: ["page-has-heading-one"] }, resultTypes: ["violations"] });
    return [...wcag.violations, ...heading.violations].map((v) => ({
      id: v.id,
      targets: v.nodes.map((n) => n.target.join(" ")),
      summary: (v.nodes[0]?.failureSummary ?? "").split("\n").slice(0, 2).join(" "),
    }));
  });
}

/** The focused element, as `<tag>#testid` (`BODY` when the focus was lost). */
const focused = (page: Page) =>
  page.evaluate(() => {
    const active = document.activeElement;
    return active ? `${active.tagName}${active.getAttribute("data-testid") ? `#${active.getAttribute("data-testid")}` : ""}` : "none";
  });

describe.skipIf(!available)("the console for keyboards and screen readers, in chromium", () => {
  let session: ConsoleSession;

  async function grant(type: string, amount: number, reason: string): Promise<number> {
    const res = await session.gql(
      `mutation ($input: GrantCreditsInput!) { grantCredits(input: $input) { balanceAfter } }`,
      { input: { subscriptionId: session.demoSubscription, type, amount, reason } },
      session.admin,
    );
    expect(res.body.errors).toBeUndefined();
    return res.body.data.grantCredits.balanceAfter;
  }

  beforeAll(async () => {
    session = await startConsoleSession("console-accessibility");
    // More than two ledger pages (20 entries each), older than the calls below (whose debits offer "refund…" on the first page).
    for (let i = 0; i < 45; i++) await grant("skiptrace", 1, `Page filler ${i}`);
    // A call of each kind for the usage, the charts and the stats.
    const leads = await session.gql(
      `mutation ($s: ID!) { searchLeads(subscriptionId: $s, input: { query: "roofers", limit: 3 }) { total } }`,
      { s: session.demoSubscription },
      session.user,
    );
    expect(leads.body.errors).toBeUndefined();
    const ai = await session.gql(`mutation ($s: ID!) { runAiTask(subscriptionId: $s, input: { prompt: "Summarise", maxTokens: 300 }) { output } }`, { s: session.demoSubscription }, session.user);
    expect(ai.body.errors).toBeUndefined();
  }, 300_000);

  afterEach(() => {
    expect(session.problems?.list ?? []).toEqual([]);
  });

  afterAll(() => session?.close());

  it("1. axe finds no WCAG A/AA violation (nor a page without its h1) on a customer's and an admin's pages", async () => {
    const found: Record<string, Violation[]> = {};
    const check = async (page: Page, name: string) => {
      const violations = await axeViolations(page);
      if (violations.length > 0) found[name] = violations;
    };

    const page = await session.freshPage();
    await page.goto(`${session.server.url}/console`);
    await page.getByTestId("token-input").waitFor();
    await check(page, "sign-in");

    // The customer.
    await page.goto(session.linkTo("/", session.user));
    await page.getByTestId("subscription-row").first().waitFor();
    await page.getByTestId("live-state").and(page.locator('[data-state="live"]')).waitFor();
    await check(page, "customer home");
    await page.goto(session.linkTo(`/subscriptions/${session.demoSubscription}`, session.user));
    await page.locator('[data-testid="chart-per-day"] .recharts-bar-rectangle').first().waitFor();
    await page.locator('[data-testid="chart-per-operation"] .recharts-bar-rectangle').first().waitFor();
    await page.getByTestId("live-state").and(page.locator('[data-state="live"]')).waitFor();
    await check(page, "subscription usage");
    // Each chart's svg (recharts' role=application, in the Tab order) has a name: its caption.
    const chartNames = await page.locator("svg.recharts-surface[role=application]").evaluateAll((svgs) => svgs.map((svg) => svg.getAttribute("aria-label")));
    expect(chartNames).toEqual([expect.stringMatching(/^Credits per day by type/), "Per operation: held (estimate) vs cost"]);
    // The credits per day as a table, under the chart.
    await page.getByTestId("chart-per-day-table").locator("summary").click();
    expect(await page.getByTestId("chart-per-day-table").locator("tbody tr").count()).toBeGreaterThanOrEqual(29);
    await check(page, "subscription usage, table shown");
    await page.getByTestId("tab-ledger").click();
    await expect.poll(() => page.getByTestId("ledger-row").count()).toBe(20);
    await check(page, "subscription ledger");
    await page.getByTestId("tab-calculator").click();
    await page.getByTestId("calc-run").click();
    await page.getByTestId("calc-total-leads").waitFor();
    await check(page, "calculator");
    await page.goto(session.linkTo("/subscriptions/00000000-0000-0000-0000-000000000000", session.user));
    session.problems?.expect(/HTTP 404|status of 404/);
    await page.getByRole("alert").waitFor();
    await check(page, "unknown subscription");

    // The admin.
    await page.goto(session.linkTo("/", session.admin));
    await page.getByTestId("subscription-row").first().waitFor();
    await check(page, "admin subscriptions");
    await page.goto(session.linkTo(`/subscriptions/${session.demoSubscription}`, session.admin));
    await page.getByTestId("admin-actions").waitFor();
    await page.locator('[data-testid="chart-per-day"] .recharts-bar-rectangle').first().waitFor();
    await page.getByTestId("action-adjust").click();
    await page.getByTestId("action-amount").fill("-100000");
    await page.getByTestId("action-reason").fill("Too much");
    session.problems?.expect(/HTTP 400|status of 400/);
    await page.getByTestId("action-submit").click();
    await page.getByTestId("admin-actions").locator('.error[role="alert"]').waitFor();
    await check(page, "admin subscription, refused adjustment");
    await page.getByTestId("tab-ledger").click();
    await page.getByTestId("ledger-refund").first().waitFor();
    await check(page, "admin subscription ledger");
    for (const path of ["/ledger", "/stats", "/alerts", "/nowhere"]) {
      await page.goto(session.linkTo(path, session.admin));
      await page.locator("h1").waitFor();
      if (path === "/ledger") await expect.poll(() => page.getByTestId("ledger-row").count()).toBe(20);
      if (path === "/stats") {
        await page.locator('[data-testid="chart-top-operations"] .recharts-bar-rectangle').first().waitFor();
        await page.locator('[data-testid="chart-top-subscriptions"] .recharts-bar-rectangle').first().waitFor();
      }
      await check(page, `admin ${path}`);
    }
    // The Stats page's charts by type as tables: its rows are the chart's bars.
    for (const chart of ["chart-top-operations", "chart-top-subscriptions"]) {
      await page.goto(session.linkTo("/stats", session.admin));
      await page.getByTestId(`${chart}-table`).locator("summary").click();
      expect(await page.getByTestId(`${chart}-table`).locator("tbody tr").count()).toBeGreaterThan(0);
    }
    expect(await page.locator("svg.recharts-surface[role=application]:not([aria-label])").count()).toBe(0);

    expect(found).toEqual({});
  });

  it("2. each page has its own title, and a navigation inside the console focuses the new page's h1", async () => {
    const page = await session.freshPage();
    const titles: string[] = [];
    await page.goto(`${session.server.url}/console`);
    await page.getByTestId("token-input").waitFor();
    titles.push(await page.title());

    await page.goto(session.linkTo("/", session.user));
    await page.getByTestId("subscription-row").first().waitFor();
    titles.push(await page.title());
    // The card's link, from the keyboard: a real link.
    const open = page.getByRole("link", { name: /^Usage, ledger, alerts and cost calculator/ });
    await open.focus();
    await page.keyboard.press("Enter");
    await page.getByTestId("subscription-page").waitFor();
    await expect.poll(() => page.evaluate(() => document.activeElement?.tagName)).toBe("H1");
    titles.push(await page.title());
    expect(await page.title()).toBe(`Usage · Subscription ${session.demoSubscription.slice(0, 8)} · ${CONSOLE_TITLE}`);
    await page.getByTestId("tab-ledger").click();
    await expect.poll(() => page.title()).toBe(`Ledger · Subscription ${session.demoSubscription.slice(0, 8)} · ${CONSOLE_TITLE}`);
    titles.push(await page.title());

    await page.goto(session.linkTo("/", session.admin));
    await page.getByTestId("subscription-row").first().waitFor();
    titles.push(await page.title());
    for (const name of ["Ledger", "Stats", "Alerts"]) {
      await page.getByRole("navigation").getByRole("link", { name }).click();
      await expect.poll(() => page.evaluate(() => document.activeElement?.tagName)).toBe("H1");
      titles.push(await page.title());
    }
    await page.goto(session.linkTo("/nowhere", session.admin));
    await page.locator("h1").waitFor();
    titles.push(await page.title());

    for (const title of titles) expect(title).toMatch(new RegExp(`^.+ · ${CONSOLE_TITLE}$`));
    expect(new Set(titles).size).toBe(titles.length);
  });

  it("3. a balance pushed over the WebSocket is announced politely, from a live region there before", async () => {
    const page = await session.freshPage();
    await page.goto(session.linkTo(`/subscriptions/${session.demoSubscription}`, session.user));
    await page.getByTestId("live-state").and(page.locator('[data-state="live"]')).waitFor();
    const region = page.getByTestId("balances").locator('[role="status"][aria-live="polite"]:not([data-testid="live-state"])');
    expect(await region.count()).toBe(1);
    // Nothing announced on arrival: the balances are read with the page.
    expect(await region.textContent()).toBe("");

    const after = await grant("leads", 3, "Announced");
    await expect.poll(() => region.textContent()).toBe(`leads balance ${after}`);
    expect(await page.getByTestId("balance-leads").textContent()).toBe(String(after));
  });

  it("4. Enter on Grant with no reason says so next to the field and focuses it; a first '-' is no error yet", async () => {
    const page = await session.freshPage();
    const mutations: string[] = [];
    page.on("request", (request) => {
      const body = request.postData() ?? "";
      if (request.method() === "POST" && /grantCredits|adjustCredits|createSubscription/.test(body)) mutations.push(body);
    });
    await page.goto(session.linkTo(`/subscriptions/${session.demoSubscription}`, session.admin));
    await page.getByTestId("admin-actions").waitFor();
    // The success message's live region is in the page, empty, before anything was done.
    expect(await page.getByTestId("notice").getAttribute("role")).toBe("status");
    expect(await page.getByTestId("notice").textContent()).toBe("");

    const reason = page.getByTestId("action-reason");
    await page.getByTestId("action-amount").focus();
    await page.keyboard.press("Enter");
    const problem = page.getByTestId("admin-actions").getByRole("alert");
    await expect.poll(() => problem.textContent()).toMatch(/^Reason is required/);
    expect(await focused(page)).toBe("INPUT#action-reason");
    expect(await reason.getAttribute("aria-invalid")).toBe("true");
    const describedBy = await reason.getAttribute("aria-describedby");
    expect(describedBy).toBeTruthy();
    expect(await page.locator(`[id="${describedBy}"]`).textContent()).toMatch(/^Reason is required/);
    // The button stays in the Tab order (not disabled).
    expect(await page.getByTestId("action-submit").isDisabled()).toBe(false);
    await reason.fill("Typed now");
    expect(await problem.count()).toBe(0);

    // Adjust: a "-" typed first is the start of a negative delta, not an error (until the field is left).
    await page.getByTestId("action-adjust").click();
    await page.getByTestId("action-amount").focus();
    await page.keyboard.type("-");
    expect(await page.getByTestId("action-amount-problem").count()).toBe(0);
    await page.keyboard.type("2");
    await page.getByTestId("action-amount").fill("-");
    await page.getByTestId("action-reason").focus();
    await expect.poll(() => page.getByTestId("action-amount-problem").textContent()).toMatch(/^Delta must be a whole number/);

    // Opening a subscription: Enter with no owner id says so, and focuses it.
    await page.getByRole("link", { name: "Subscriptions" }).click();
    const form = page.getByTestId("create-subscription");
    await page.getByTestId("create-credits-leads").focus();
    await page.keyboard.press("Enter");
    await expect.poll(() => form.getByRole("alert").first().textContent()).toMatch(/^Owner id is required/);
    expect(await focused(page)).toBe("INPUT#create-owner");
    expect(await page.getByTestId("create-owner").getAttribute("aria-invalid")).toBe("true");
    expect(mutations).toEqual([]);
  });

  it("5. the ledger paged to its end from the keyboard keeps the focus on a button, the page announced", async () => {
    const page = await session.freshPage();
    await page.goto(session.linkTo(`/subscriptions/${session.demoSubscription}`, session.user));
    await page.getByTestId("tab-ledger").click();
    await expect.poll(() => page.getByTestId("ledger-row").count()).toBe(20);
    const older = page.getByTestId("ledger-older");
    const pageStatus = page.getByTestId("ledger").getByRole("status");
    await older.focus();
    const firstRow = () => page.getByTestId("ledger-row").first().evaluate((tr) => tr.lastElementChild!.getAttribute("title"));
    for (let pageNo = 2; ; pageNo++) {
      const shown = await firstRow();
      await page.keyboard.press("Enter");
      await expect.poll(() => pageStatus.textContent()).toBe(`page ${pageNo}`);
      // The number changes at the press, the rows (and whether "Older →" stays enabled) when the page
      // has loaded: the next press waits for them (it once landed on "← Newer", focused by the last
      // page's arrival, on a loaded machine).
      await expect.poll(async () => (await page.getByTestId("ledger").locator("table.loading").count()) === 0 && (await firstRow()) !== shown).toBe(true);
      await expect.poll(async () => (await older.isDisabled()) || (await focused(page)) === "BUTTON#ledger-older").toBe(true);
      if (await older.isDisabled()) break;
    }
    // The last page: "Older →" is disabled, the focus on "← Newer", never the page's body.
    await expect.poll(() => focused(page)).toBe("BUTTON#ledger-newer");
    // And Enter there goes back a page.
    await page.keyboard.press("Enter");
    await expect.poll(() => pageStatus.textContent()).toMatch(/^page \d+$/);
    expect(await focused(page)).not.toBe("BODY");
  });

  it("6. the calculator's answer is a status region, its totals read apart", async () => {
    const page = await session.freshPage();
    await page.goto(session.linkTo(`/subscriptions/${session.demoSubscription}`, session.user));
    await page.getByTestId("tab-calculator").click();
    const answer = page.getByTestId("calc-result").getByRole("status");
    // There before the first price, empty.
    expect(await answer.count()).toBe(1);
    expect(await answer.textContent()).toBe("");
    await page.getByTestId("calc-run").click();
    await expect.poll(() => answer.textContent()).toMatch(/^The balance covers it\.Total: \d+ credits? \(ai\), 25 credits \(leads\)$/);
    expect(await answer.getAttribute("aria-live")).toBe("polite");
  });

  it("7. 'refund…' names its entry and takes the focus to the Refund form; the admin's search count is a status", async () => {
    const page = await session.freshPage();
    await page.goto(session.linkTo(`/subscriptions/${session.demoSubscription}`, session.admin));
    await page.getByTestId("tab-ledger").click();
    const row = page.locator('[data-testid="ledger-row"]:has([data-testid="ledger-refund"])').first();
    const refund = row.getByTestId("ledger-refund");
    await refund.waitFor();
    const entryId = await row.locator("td[title]").getAttribute("title");
    expect(await refund.getAttribute("aria-label")).toMatch(new RegExp(`^Refund entry ${entryId!.slice(0, 8)} \\(\\d+ credits? left\\)$`));
    await refund.focus();
    await page.keyboard.press("Enter");
    await expect.poll(() => focused(page)).toBe("INPUT#action-entry");
    expect(await page.getByTestId("action-entry").inputValue()).toBe(entryId);

    await page.goto(session.linkTo("/", session.admin));
    const count = page.getByTestId("search-count");
    await expect.poll(() => count.textContent()).toMatch(/^\d+ subscriptions? · newest first · page 1$/);
    expect(await count.getAttribute("role")).toBe("status");
    await page.getByTestId("search").fill("nobody-by-this-name");
    await expect.poll(() => count.textContent()).toMatch(/^No subscriptions found/);
  });
});
