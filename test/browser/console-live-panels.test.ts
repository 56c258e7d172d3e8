/**
 * The console's panels that follow a subscription as it changes, in a real chromium (playwright-core)
 * against the real entry point (src/main.ts in a child process) on a fresh PGlite database with the
 * development mode's demo subscription (100 credits of each type):
 *
 * - the ledger's operation filter takes a short name (`searchLeads`), in any case, as well as the
 *   full schema coordinate (`Mutation.searchLeads`), and offers the known operations (creditCatalog);
 * - the alerts lists (a subscription's Alerts tab, the admin's Alerts page) show a new LOW_BALANCE or
 *   BALANCE_RECOVERED alert without a reload, when the live balance event of the crossing arrives;
 * - the usage of the subscription on screen follows its charges without a reload;
 * - after a mouse click on an admin action's submit, the focus is on the result (the message, or
 *   the error), not lost to the page's body.
 *
 * Any console error, uncaught exception, failed request or HTTP error status the test did not ask
 * for fails it.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Page } from "playwright-core";
import { DEMO_USER_ID } from "../../src/app/dev-seed.js";
import { chromiumAvailable } from "../helpers/browser.js";
import { startConsoleSession, type ConsoleSession } from "../helpers/console-session.js";
import { documentText } from "../helpers/typed-gql.js";
import { SearchLeadsDocument, SkipTraceDocument } from "../generated/graphql.js";

const available = chromiumAvailable();

describe.skipIf(!available)("the console's live panels and operation filter in chromium", () => {
  let session: ConsoleSession;

  /** A metered call made through the API by the demo user, not through the page. */
  async function searchLeads(query: string): Promise<void> {
    const res = await session.gql(documentText(SearchLeadsDocument), { subscriptionId: session.demoSubscription, input: { query, limit: 3 } }, session.user);
    expect(res.body.errors).toBeUndefined();
  }

  /** The ids of the demo subscription's entries of one operation, newest first, as the API has them. */
  async function entriesOf(operation: string): Promise<string[]> {
    const res = await session.gql(
      `query ($s: ID, $f: LedgerFilter) { creditLedger(subscriptionId: $s, filter: $f, first: 20) { edges { node { id } } } }`,
      { s: session.demoSubscription, f: { operation } },
      session.admin,
    );
    return res.body.data.creditLedger.edges.map((e: { node: { id: string } }) => e.node.id);
  }

  /** The page won't reload: a marker on window survives only if it does not. */
  const mark = (page: Page) => page.evaluate(() => ((window as unknown as { marker: number }).marker = 42));
  const marked = (page: Page) => page.evaluate(() => (window as unknown as { marker?: number }).marker);

  beforeAll(async () => {
    session = await startConsoleSession("console-live");
  }, 300_000);

  afterEach(() => {
    expect(session.problems?.list ?? []).toEqual([]);
  });

  afterAll(() => session?.close());

  it("filters the ledger by an operation's short name, in any case, as well as by its full name", async () => {
    await searchLeads("roofers");
    await searchLeads("plumbers");
    const trace = await session.gql(
      documentText(SkipTraceDocument),
      { subscriptionId: session.demoSubscription, input: { records: [{ firstName: "Ada", lastName: "Lovelace", address: "1 Main St" }] } },
      session.user,
    );
    expect(trace.body.errors).toBeUndefined();
    const leads = await entriesOf("Mutation.searchLeads");
    const traces = await entriesOf("Mutation.skipTrace");
    expect(leads.length).toBeGreaterThanOrEqual(2);
    expect(traces.length).toBeGreaterThanOrEqual(1);

    const page = await session.freshPage();
    await page.goto(session.linkTo(`/subscriptions/${session.demoSubscription}`, session.user));
    await page.getByTestId("tab-ledger").click();
    await page.getByTestId("ledger-row").first().waitFor();
    const rowIds = () => page.getByTestId("ledger-row").evaluateAll((trs) => trs.map((tr) => tr.lastElementChild!.getAttribute("title")));
    const field = page.getByTestId("ledger").getByLabel("Operation", { exact: true });
    for (const typed of ["searchLeads", "searchleads", "SearchLeads", "Mutation.searchLeads"]) {
      await field.fill(typed);
      await expect.poll(rowIds, { timeout: 5_000, message: `typed ${typed}` }).toEqual(leads);
    }
    await field.fill("SKIPTRACE");
    await expect.poll(rowIds, { timeout: 5_000 }).toEqual(traces);
    // The known operations are offered as the field's suggestions.
    const suggestions = await field.evaluate((input) => [...((input as HTMLInputElement).list?.options ?? [])].map((o) => o.value));
    expect(suggestions).toEqual(expect.arrayContaining(["Mutation.searchLeads", "Mutation.skipTrace", "Mutation.lookupPhones"]));
  });

  it("a subscription's Alerts tab shows a threshold crossing's alert without a reload", async () => {
    const page = await session.freshPage();
    await page.goto(session.linkTo(`/subscriptions/${session.demoSubscription}`, session.user));
    await page.getByTestId("tab-alerts").click();
    await page.getByTestId("alerts").getByText("No alerts for this subscription.").waitFor();
    await expect.poll(() => page.locator(".live-dot.on").count(), { timeout: 5_000 }).toBe(1);
    await mark(page);

    // The leads balance falls below its threshold through the API: the crossing's alert appears.
    const leads = await session.balanceOf(session.demoSubscription, "leads");
    const threshold = await session.gql(
      `mutation ($input: LowBalanceThresholdInput!) { setLowBalanceThreshold(input: $input) { lowBalanceThreshold } }`,
      { input: { subscriptionId: session.demoSubscription, type: "leads", lowBalance: leads } },
      session.admin,
    );
    expect(threshold.body.errors).toBeUndefined();
    await searchLeads("painters");
    const low = page.locator('[data-testid="alerts"] li[data-kind="LOW_BALANCE"]');
    await expect.poll(() => low.count(), { timeout: 10_000 }).toBe(1);
    expect(await marked(page)).toBe(42);
  });

  it("the admin's Alerts page shows a listed subscription's new alert (its recovery) without a reload", async () => {
    // The LOW_BALANCE alert of the test above is listed; a grant back above the threshold recovers it.
    const listed = await session.gql(`query ($s: ID) { creditAlerts(subscriptionId: $s) { edges { node { kind } } } }`, { s: session.demoSubscription }, session.admin);
    expect(listed.body.data.creditAlerts.edges.map((e: { node: { kind: string } }) => e.node.kind)).toEqual(["LOW_BALANCE"]);
    const page = await session.freshPage();
    const subscribes: string[] = [];
    page.on("websocket", (ws) => ws.on("framesent", (frame) => void (String(frame.payload).includes('"subscribe"') && subscribes.push(String(frame.payload)))));
    await page.goto(session.linkTo("/alerts", session.admin));
    await page.locator('[data-testid="alerts"] li[data-kind="LOW_BALANCE"]').waitFor();
    // Let the page follow the balances of the subscriptions it lists (the subscribe sent, and taken).
    for (let waited = 0; waited < 5_000 && !subscribes.some((s) => s.includes(session.demoSubscription)); waited += 100) await page.waitForTimeout(100);
    await page.waitForTimeout(500);
    await mark(page);
    const grant = await session.gql(
      `mutation ($input: GrantCreditsInput!) { grantCredits(input: $input) { balanceAfter } }`,
      { input: { subscriptionId: session.demoSubscription, type: "leads", amount: 50, reason: "Top-up" } },
      session.admin,
    );
    expect(grant.body.errors).toBeUndefined();
    await expect.poll(() => page.locator('[data-testid="alerts"] li[data-kind="BALANCE_RECOVERED"]').count(), { timeout: 10_000 }).toBe(1);
    expect(await marked(page)).toBe(42);
  });

  it("a subscription's usage follows its charges without a reload", async () => {
    const page = await session.freshPage();
    await page.goto(session.linkTo(`/subscriptions/${session.demoSubscription}`, session.user));
    const callsOf = (operation: string) =>
      page
        .getByTestId("usage-row")
        .evaluateAll((rows, op) => rows.filter((r) => r.children[0].textContent === op).map((r) => Number(r.children[1].textContent)), operation)
        .then((calls) => calls[0] ?? 0);
    await page.getByTestId("usage-row").first().waitFor();
    const before = await callsOf("Mutation.searchLeads");
    expect(before).toBeGreaterThanOrEqual(1);
    expect(await callsOf("Mutation.lookupPhones")).toBe(0);
    await expect.poll(() => page.locator(".live-dot.on").count(), { timeout: 5_000 }).toBe(1);
    await mark(page);

    await searchLeads("electricians");
    await expect.poll(() => callsOf("Mutation.searchLeads"), { timeout: 10_000 }).toBe(before + 1);
    // A new operation gets its row.
    const phones = await session.gql(
      `mutation ($s: ID!) { lookupPhones(subscriptionId: $s, input: { phones: ["+15550100"] }) { results { phone } } }`,
      { s: session.demoSubscription },
      session.user,
    );
    expect(phones.body.errors).toBeUndefined();
    await expect.poll(() => callsOf("Mutation.lookupPhones"), { timeout: 10_000 }).toBe(1);
    expect(await marked(page)).toBe(42);
  });

  it("after a mouse click on an admin action, the focus is on its result, not lost to the page", async () => {
    const page = await session.freshPage();
    await page.goto(session.linkTo(`/subscriptions/${session.demoSubscription}`, session.admin));
    await page.getByTestId("admin-actions").waitFor();
    const focused = () => page.evaluate(() => document.activeElement?.getAttribute("data-testid") ?? document.activeElement?.tagName);

    await page.getByTestId("action-type").selectOption("ai");
    await page.getByTestId("action-amount").fill("10");
    await page.getByTestId("action-reason").fill("Goodwill");
    await page.getByTestId("action-submit").click();
    await expect.poll(() => page.getByTestId("notice").textContent()).toContain("Granted 10 credits (ai): Goodwill");
    await expect.poll(focused).toMatch(/^(notice|action-submit)$/);
    expect(await page.getByTestId("notice").getAttribute("role")).toBe("status");

    // A refusal: the focus is on the server's message, which says why.
    session.problems!.expect(/HTTP 400|status of 400/);
    await page.getByTestId("action-adjust").click();
    await page.getByTestId("action-type").selectOption("leads");
    await page.getByTestId("action-amount").fill("-100000");
    await page.getByTestId("action-reason").fill("Typo test");
    await page.getByTestId("action-submit").click();
    const refusal = page.getByTestId("admin-actions").getByRole("alert");
    await expect.poll(() => refusal.textContent()).toMatch(/would take the leads balance below zero/);
    await expect.poll(() => page.evaluate(() => document.activeElement?.getAttribute("role") ?? document.activeElement?.getAttribute("data-testid") ?? document.activeElement?.tagName)).toMatch(/^(alert|action-submit)$/);
  });
});
