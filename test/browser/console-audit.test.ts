/**
 * What an outside audit of the console in chromium found, each checked in a real chromium
 * (playwright-core) against the real entry point (src/main.ts in a child process) on a fresh PGlite
 * database with the development mode's demo subscription (100 credits of each type):
 *
 * 1. one date format everywhere the console prints a date: a grant's expiry reads the same in the
 *    success message as in the grants table ("02 Dec 2031, 02:17:00"), and the per-day chart's days
 *    are "02 Dec", never "12-02";
 * 2. the cost calculator's refusal says, per short type, what the operation needs and what is there;
 * 3. the ledger offers no "refund…" on a debit with nothing left to refund;
 * 4. the admin form's tabs have their own amount: an adjustment's -3 is no error on the Refund tab;
 * 5. Enter on the sign-in page with no token says to paste one, the focus kept on the field;
 * 6. credit counts in sentences are singular or plural as they should be: "1 credit (ai)";
 * 7. the Stats page's top operations and subscriptions are coloured by credit type, with a legend;
 * 8. estimator accuracy is (estimated − released) ÷ estimated: refunds are not the estimator's error.
 *
 * Any console error, uncaught exception, failed request or HTTP error status the test did not ask
 * for fails it.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Page } from "playwright-core";
import { DEMO_USER_ID } from "../../src/app/dev-seed.js";
import { chromiumAvailable } from "../helpers/browser.js";
import { startConsoleSession, type ConsoleSession } from "../helpers/console-session.js";

const available = chromiumAvailable();

interface Bucket {
  key: string;
  calls: number;
  estimated: number;
  released: number;
  refunded: number;
  credits: number;
}

describe.skipIf(!available)("the console after the audit, in chromium", () => {
  let session: ConsoleSession;

  /** A lead search made through the API by the demo user; its DEBIT entry's id. */
  async function searchLeads(query: string, limit = 3): Promise<string> {
    const res = await session.gql(
      `mutation ($s: ID!, $q: String!, $l: Int) { searchLeads(subscriptionId: $s, input: { query: $q, limit: $l }) { total } }`,
      { s: session.demoSubscription, q: query, l: limit },
      session.user,
    );
    expect(res.body.errors).toBeUndefined();
    const ledger = await session.gql(
      `query ($s: ID) { creditLedger(subscriptionId: $s, filter: { kinds: [DEBIT], operation: "Mutation.searchLeads" }, first: 1) { edges { node { id } } } }`,
      { s: session.demoSubscription },
      session.admin,
    );
    return ledger.body.data.creditLedger.edges[0].node.id;
  }

  async function refundCharge(entryId: string, amount?: number): Promise<void> {
    const res = await session.gql(
      `mutation ($input: RefundChargeInput!) { refundCharge(input: $input) { id } }`,
      { input: { entryId, amount, reason: "Audit test refund" } },
      session.admin,
    );
    expect(res.body.errors).toBeUndefined();
  }

  async function statsPerOperation(): Promise<Bucket[]> {
    const res = await session.gql(`{ creditStats(groupBy: OPERATION) { key calls estimated released refunded credits } }`, {}, session.admin);
    expect(res.body.errors).toBeUndefined();
    return res.body.data.creditStats;
  }

  beforeAll(async () => {
    session = await startConsoleSession("console-audit");
    // Calls of each credit type, for the usage and the stats.
    await searchLeads("roofers");
    const ai = await session.gql(`mutation ($s: ID!) { runAiTask(subscriptionId: $s, input: { prompt: "Summarise", maxTokens: 300 }) { output } }`, { s: session.demoSubscription }, session.user);
    expect(ai.body.errors).toBeUndefined();
    const trace = await session.gql(
      `mutation ($s: ID!) { skipTrace(subscriptionId: $s, input: { records: [{ firstName: "Ada", lastName: "Lovelace", address: "1 Main St" }] }) { matches { recordIndex } } }`,
      { s: session.demoSubscription },
      session.user,
    );
    expect(trace.body.errors).toBeUndefined();
  }, 300_000);

  afterEach(() => {
    expect(session.problems?.list ?? []).toEqual([]);
  });

  afterAll(() => session?.close());

  it("1. prints a grant's expiry in one format, the message as the grants table, and chart days as '02 Dec'", async () => {
    const page = await session.freshPage();
    await page.goto(session.linkTo(`/subscriptions/${session.demoSubscription}`, session.admin));
    await page.getByTestId("admin-actions").waitFor();
    await page.getByTestId("action-type").selectOption("ai");
    await page.getByTestId("action-amount").fill("3");
    await page.getByTestId("action-reason").fill("Dated grant");
    // 2 December: its day and month would swap between a day-first and a month-first format.
    await page.getByTestId("action-expiry").fill("2031-12-02T02:17");
    await page.getByTestId("action-submit").click();
    const notice = page.getByTestId("notice");
    await expect.poll(() => notice.textContent()).toMatch(/Dated grant$/);

    await page.getByTestId("grants").locator("summary").click();
    const expires = () =>
      page
        .getByTestId("grant-row")
        .evaluateAll((rows) => rows.filter((r) => r.children[6].textContent === "Dated grant").map((r) => r.children[5].textContent));
    await expect.poll(expires).toHaveLength(1);
    const [shown] = await expires();
    expect(shown).toMatch(/^02 Dec 2031, 02:17/);
    expect(await notice.textContent()).toContain(`expiring ${shown}`);

    // The per-day chart's days: day first, the month in letters.
    const ticks = page.locator('[data-testid="chart-per-day"] .recharts-xAxis-tick-labels .recharts-cartesian-axis-tick-value');
    await ticks.first().waitFor();
    const days = await ticks.allTextContents();
    expect(days.length).toBeGreaterThan(0);
    for (const day of days) expect(day).toMatch(/^\d{2} [A-Z][a-z]{2,3}$/);
  });

  it("2. the calculator's refusal says what each short type needs and what is available", async () => {
    const page = await session.freshPage();
    await page.goto(session.linkTo(`/subscriptions/${session.demoSubscription}`, session.user));
    await page.getByTestId("tab-calculator").click();
    await page.getByTestId("calc-query").fill(`mutation { searchLeads(subscriptionId: "${session.demoSubscription}", input: { query: "roofers", limit: 500 }) { total } }`);
    await page.getByTestId("calc-run").click();
    await page.getByTestId("calc-result").waitFor();
    const leads = await session.balanceOf(session.demoSubscription, "leads");
    expect(leads).toBeLessThan(500);
    await expect.poll(() => page.getByTestId("calc-result").textContent()).toContain("would be refused (402)");
    expect(await page.getByTestId("calc-shortfall").count()).toBe(1);
    expect(await page.getByTestId("calc-shortfall").textContent()).toBe(`leads needs 500 credits, ${leads} available`);
    expect(await page.getByTestId("calc-total-leads").textContent()).toBe("500 credits (leads)");
  });

  it("3. the ledger offers no refund of a debit with nothing left to refund", async () => {
    const refunded = await searchLeads("plumbers");
    await refundCharge(refunded);
    const open = await searchLeads("painters");

    const page = await session.freshPage();
    await page.goto(session.linkTo(`/subscriptions/${session.demoSubscription}`, session.admin));
    await page.getByTestId("tab-ledger").click();
    const row = (id: string) => page.locator(`[data-testid="ledger-row"]:has(td[title="${id}"])`);
    await row(refunded).waitFor();
    // The other debit is offered (once the console knows what each has left), the refunded one is not.
    await row(open).getByTestId("ledger-refund").waitFor({ timeout: 10_000 });
    expect(await row(refunded).getAttribute("data-kind")).toBe("DEBIT");
    expect(await row(refunded).getByTestId("ledger-refund").count()).toBe(0);
  });

  it("4. the admin form's tabs each have their own amount: an adjustment's -3 is no refund error", async () => {
    const page = await session.freshPage();
    await page.goto(session.linkTo(`/subscriptions/${session.demoSubscription}`, session.admin));
    await page.getByTestId("admin-actions").waitFor();
    // A problem on one tab is not carried to the next.
    await page.getByTestId("action-amount").fill("abc");
    await page.getByTestId("action-amount-problem").waitFor();
    await page.getByTestId("action-adjust").click();
    expect(await page.getByTestId("action-amount-problem").count()).toBe(0);

    await page.getByTestId("action-type").selectOption("leads");
    await page.getByTestId("action-amount").fill("-3");
    await page.getByTestId("action-reason").fill("Correction");
    await page.getByTestId("action-submit").click();
    await expect.poll(() => page.getByTestId("notice").textContent()).toMatch(/^Adjusted .*: Correction$/);
    await page.getByTestId("action-refund").click();
    expect(await page.getByTestId("action-amount").inputValue()).toBe("");
    expect(await page.getByTestId("action-amount-problem").count()).toBe(0);
    expect(await page.getByTestId("admin-actions").getByRole("alert").count()).toBe(0);
    // Back on Grant: its own amount, as it was typed.
    await page.getByTestId("action-grant").click();
    expect(await page.getByTestId("action-amount").inputValue()).toBe("abc");
  });

  it("5. Enter on the sign-in page with no token says to paste one, and the focus stays on the field", async () => {
    const page = await session.freshPage();
    await page.goto(`${session.server.url}/console`);
    await page.getByTestId("token-input").waitFor();
    const focused = () => page.evaluate(() => document.activeElement?.getAttribute("data-testid"));
    await expect.poll(focused).toBe("token-input");
    await page.keyboard.press("Enter");
    const message = page.getByTestId("signin").getByRole("alert");
    await expect.poll(() => message.count(), { timeout: 5_000 }).toBe(1);
    expect(await message.textContent()).toMatch(/Paste a token/);
    expect(await focused()).toBe("token-input");
    // Blank is no token either.
    await page.keyboard.type("   ");
    await page.keyboard.press("Enter");
    await expect.poll(() => message.textContent()).toMatch(/Paste a token/);
    expect(await focused()).toBe("token-input");
    expect(await page.getByTestId("token-input").getAttribute("aria-invalid")).toBe("true");
    expect(await page.getByTestId("signin").count()).toBe(1);
  });

  it("6. credit counts in sentences: '1 credit (ai)', '2 credits (ai)'", async () => {
    const page = await session.freshPage();
    await page.goto(session.linkTo(`/subscriptions/${session.demoSubscription}`, session.admin));
    await page.getByTestId("admin-actions").waitFor();
    await page.getByTestId("action-type").selectOption("ai");
    await page.getByTestId("action-amount").fill("1");
    await page.getByTestId("action-reason").fill("One-off");
    await page.getByTestId("action-submit").click();
    await expect.poll(() => page.getByTestId("notice").textContent()).toBe("Granted 1 credit (ai): One-off");
    await page.getByTestId("action-amount").fill("2");
    await page.getByTestId("action-reason").fill("Two-off");
    await page.getByTestId("action-submit").click();
    await expect.poll(() => page.getByTestId("notice").textContent()).toBe("Granted 2 credits (ai): Two-off");

    // A refund of 1 credit of a charge picked in the ledger.
    await page.getByTestId("tab-ledger").click();
    const debit = page.locator('[data-testid="ledger-row"][data-kind="DEBIT"]:has([data-testid="ledger-refund"])').first();
    await debit.waitFor({ timeout: 10_000 });
    const type = (await debit.locator("td").nth(1).textContent())!;
    await debit.getByTestId("ledger-refund").click();
    // The form takes the picked debit on its next render (and empties the amount): fill it after that.
    await expect.poll(() => page.getByTestId("action-entry").inputValue()).not.toBe("");
    await page.getByTestId("action-amount").fill("1");
    await page.getByTestId("action-reason").fill("Goodwill");
    await page.getByTestId("action-submit").click();
    await expect
      .poll(() => page.getByTestId("notice").textContent())
      .toBe(`Refunded 1 credit (${type}) to subscription ${session.demoSubscription} (owner ${DEMO_USER_ID}): Goodwill`);
  });

  it("7. the Stats page colours top operations and subscriptions by credit type, with a legend", async () => {
    const page = await session.freshPage();
    await page.goto(session.linkTo("/stats", session.admin));
    for (const chart of ["chart-per-day", "chart-top-operations", "chart-top-subscriptions"]) {
      await page.locator(`[data-testid="${chart}"] .recharts-bar-rectangle`).first().waitFor();
    }
    // Each type's colour, as the per-day chart's legend has it.
    const legendOf = (chart: string) =>
      page.locator(`[data-testid="${chart}"] .recharts-legend-item`).evaluateAll((items) =>
        Object.fromEntries(items.map((item) => [item.querySelector(".recharts-legend-item-text")!.textContent, item.querySelector("path")!.getAttribute("fill")])),
      );
    const colours = await legendOf("chart-per-day");
    expect(Object.keys(colours).sort()).toEqual(["ai", "leads", "skiptrace"]);
    expect(new Set(Object.values(colours)).size).toBe(3);
    /** The fills of a chart's drawn bars. */
    const fills = (chart: string) =>
      page
        .locator(`[data-testid="${chart}"] .recharts-bar-rectangle path`)
        .evaluateAll((paths) => [...new Set(paths.filter((p) => p.getBoundingClientRect().width > 0).map((p) => p.getAttribute("fill")))].sort());
    // Operations of all three types: a bar in each type's colour, and nothing else.
    await expect.poll(() => fills("chart-top-operations")).toEqual(Object.values(colours).sort());
    // The one subscription spends all three: a stacked bar in their colours, named in a legend.
    await expect.poll(() => fills("chart-top-subscriptions")).toEqual(Object.values(colours).sort());
    expect(await legendOf("chart-top-subscriptions")).toEqual(colours);
  });

  it("8. estimator accuracy is (estimated − released) ÷ estimated: an admin's refund does not lower it", async () => {
    const debit = await searchLeads("electricians", 5);
    await refundCharge(debit, 2);
    const leads = (await statsPerOperation()).find((b) => b.key === "Mutation.searchLeads")!;
    expect(leads.refunded).toBeGreaterThan(0);
    const accuracy = Math.round((100 * (leads.estimated - leads.released)) / leads.estimated);
    // Not what cost ÷ held would say, with the refunds in it.
    expect(Math.round((100 * leads.credits) / leads.estimated)).not.toBe(accuracy);

    const page = await session.freshPage();
    await page.goto(session.linkTo("/stats", session.admin));
    const row = page.locator('[data-testid="accuracy"] tbody tr:has(td:text-is("Mutation.searchLeads"))');
    await row.waitFor();
    expect(await row.locator("td").last().textContent()).toBe(`${accuracy}%`);
    expect(await page.getByTestId("accuracy-note").textContent()).toMatch(/\(estimated − released\) ÷ estimated/);
  });
});
