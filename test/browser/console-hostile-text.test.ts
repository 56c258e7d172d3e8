/**
 * The console with hostile or extreme data that the API accepts, in chromium (playwright-core)
 * against the real entry point on a fresh PGlite database: what an outside audit found.
 *
 * 1. Bidi: a right-to-left override (U+202E) in an owner id is isolated where the console prints it
 *    (`<bdi>`, components/UserText.tsx): the subscription's header line keeps "owner … · plan …" in
 *    that order, and a refund's message keeps the admin's reason after the owner, not mirrored.
 * 2. Width: a 255-character owner id, a 200-character plan name and a status reason of one
 *    900-character word never widen the page, and the status badge stays on screen; nor does a
 *    200-character plan name in the "Open a subscription" plan select.
 * 3. Charts: credits of billions are ticked "6B", "1.5B", inside the chart, never cut at its left
 *    edge nor shown as their last digits (a subscription's usage, the Stats page).
 * 4. "Avg / call" is grouped like every other figure: "571,428,571.4".
 *
 * The server's figures in 2–4 are what the API answers, enlarged on their way to the page
 * (playwright's route), since no test would charge six billion credits. Any console error, uncaught
 * exception, failed request or HTTP error status fails the test.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Locator, Page } from "playwright-core";
import { mintToken } from "../../src/auth/mint.js";
import { chromiumAvailable } from "../helpers/browser.js";
import { startConsoleSession, type ConsoleSession } from "../helpers/console-session.js";

const available = chromiumAvailable();

/** An owner id the API accepts that starts with a right-to-left override. */
const RTL_OWNER = "\u202eevil\u200b\u200dx";
const RTL_PLAN = "gold-plan";
const LONG_OWNER = `customer-${"o".repeat(246)}`;
const LONG_PLAN = `plan-${"p".repeat(195)}`;
const LONG_REASON = `Unpaid:${"w".repeat(900)}`;
const WIDTH = 1280;
const SIX_BILLION = 6_000_000_000;

interface Bucket {
  key: string;
  subKey?: string | null;
  calls: number;
  estimated: number;
  released: number;
  refunded: number;
  credits: number;
  averageCredits: number;
}

describe.skipIf(!available)("the console with hostile or extreme text and figures, in chromium", () => {
  let session: ConsoleSession;
  let rtlSubscription: string;
  let rtlDebit: string;
  let longSubscription: string;

  async function createSubscription(ownerId: string, plan: string, leads = 0): Promise<string> {
    const res = await session.gql(
      `mutation ($input: CreateSubscriptionInput!) { createSubscription(input: $input) { id } }`,
      { input: { ownerId, plan, initialCredits: leads ? [{ type: "leads", amount: leads }] : [] } },
      session.admin,
    );
    expect(res.body.errors).toBeUndefined();
    return res.body.data.createSubscription.id;
  }

  beforeAll(async () => {
    session = await startConsoleSession("console-hostile-text");
    rtlSubscription = await createSubscription(RTL_OWNER, RTL_PLAN, 50);
    // A charge of the right-to-left owner, for the refund's message.
    const owner = await mintToken({ sub: RTL_OWNER });
    const call = await session.gql(
      `mutation ($s: ID!) { searchLeads(subscriptionId: $s, input: { query: "roofers", limit: 3 }) { total } }`,
      { s: rtlSubscription },
      owner,
    );
    expect(call.body.errors).toBeUndefined();
    const ledger = await session.gql(
      `query ($s: ID) { creditLedger(subscriptionId: $s, filter: { kinds: [DEBIT] }, first: 1) { edges { node { id } } } }`,
      { s: rtlSubscription },
      session.admin,
    );
    rtlDebit = ledger.body.data.creditLedger.edges[0].node.id;

    longSubscription = await createSubscription(LONG_OWNER, LONG_PLAN);
    const suspended = await session.gql(
      `mutation ($id: ID!, $reason: String!) { setSubscriptionStatus(id: $id, status: SUSPENDED, reason: $reason) { status } }`,
      { id: longSubscription, reason: LONG_REASON },
      session.admin,
    );
    expect(suspended.body.errors).toBeUndefined();
  }, 300_000);

  afterEach(() => {
    expect(session.problems?.list ?? []).toEqual([]);
  });

  afterAll(() => session?.close());

  async function page1280(): Promise<Page> {
    const page = await session.freshPage();
    await page.setViewportSize({ width: WIDTH, height: 900 });
    return page;
  }

  /** The query `operation` answered by the server, changed by `change` on its way to the page. */
  async function rewrite(page: Page, operation: string, change: (data: Record<string, unknown>) => void): Promise<void> {
    await page.route("**/graphql", async (route) => {
      if (!(route.request().postData() ?? "").includes(`query ${operation}`)) return route.fallback();
      const response = await route.fetch();
      const json = await response.json();
      change(json.data);
      await route.fulfill({ response, json });
    });
  }

  /** Whether the element, or one around it inside its paragraph, is a bidi isolate. */
  const isolatedInline = (element: Locator) =>
    element.evaluate((el) => {
      for (let e: Element | null = el; e && e.tagName !== "P" && e.tagName !== "DIV"; e = e.parentElement) {
        if (/isolate|plaintext/.test(getComputedStyle(e).unicodeBidi)) return true;
      }
      return false;
    });

  /**
   * Where `text` is drawn inside `root`: the x of its first and of its last character (a text
   * reordered right to left has its first character right of its last).
   */
  const drawn = (root: Locator, text: string) =>
    root.evaluate((el, wanted) => {
      const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const at = (node as Text).data.indexOf(wanted);
        if (at < 0) continue;
        const xOf = (offset: number) => {
          const range = document.createRange();
          range.setStart(node!, offset);
          range.setEnd(node!, offset + 1);
          return range.getBoundingClientRect().x;
        };
        return { first: xOf(at), last: xOf(at + wanted.length - 1) };
      }
      throw new Error(`"${wanted}" is not in the element`);
    }, text);

  it("1. isolates an owner id with a right-to-left override: the header line and a refund's message keep their order", async () => {
    const page = await page1280();
    await page.goto(session.linkTo(`/subscriptions/${rtlSubscription}`, session.admin));
    const owner = page.getByTestId("owner");
    await owner.waitFor();
    expect(await owner.textContent()).toBe(RTL_OWNER);
    expect(await isolatedInline(owner)).toBe(true);

    // "owner ‮evil x · plan gold-plan · opened …": the plan reads left to right, right of the owner.
    const line = owner.locator("xpath=ancestor::p[1]");
    const plan = await drawn(line, RTL_PLAN);
    expect(plan.first).toBeLessThan(plan.last);
    const ownerBox = (await owner.boundingBox())!;
    expect(plan.first).toBeGreaterThan(ownerBox.x + ownerBox.width - 1);
    const opened = await drawn(line, "opened");
    expect(opened.first).toBeGreaterThan(plan.last);

    // A refund's message: "Refunded … (owner ‮evil x): Goodwill", the reason not mirrored before the owner.
    await page.getByTestId("action-refund").click();
    await page.getByTestId("action-entry").fill(rtlDebit);
    await page.getByTestId("action-amount").fill("1");
    await page.getByTestId("action-reason").fill("Goodwill");
    await page.getByTestId("action-submit").click();
    const notice = page.getByTestId("notice");
    await expect.poll(() => notice.textContent(), { timeout: 10_000 }).toMatch(/\(owner .*\): Goodwill$/);
    const reason = await drawn(notice, "Goodwill");
    expect(reason.first).toBeLessThan(reason.last);
    const refunded = await drawn(notice, "Refunded");
    expect(reason.first).toBeGreaterThan(refunded.last);
  });

  it("2. never scrolls sideways for a 255-character owner id, a 200-character plan or a 900-character reason; the status stays on screen", async () => {
    const page = await page1280();
    const pageWidth = () => page.evaluate(() => document.documentElement.scrollWidth);
    await page.goto(session.linkTo(`/subscriptions/${longSubscription}`, session.admin));
    await page.getByTestId("owner").waitFor();
    expect(await page.getByTestId("owner").textContent()).toBe(LONG_OWNER);
    expect(await pageWidth()).toBeLessThanOrEqual(WIDTH);
    const status = (await page.getByTestId("status").boundingBox())!;
    expect(status.x).toBeGreaterThanOrEqual(0);
    expect(status.x + status.width).toBeLessThanOrEqual(WIDTH);
    // The badge's word itself is on screen, not only its box.
    const badge = await drawn(page.getByTestId("status"), "SUSPENDED");
    expect(badge.first).toBeGreaterThanOrEqual(0);
    expect(badge.last).toBeLessThan(WIDTH);

    // The admin's list of subscriptions: the table scrolls inside its panel, not the page.
    await page.getByRole("link", { name: "Subscriptions" }).click();
    await page.getByTestId("subscription-row").first().waitFor();
    expect(await pageWidth()).toBeLessThanOrEqual(WIDTH);
  });

  it("2. keeps the plan select of 'Open a subscription' within the page for a 200-character plan name", async () => {
    const page = await page1280();
    await rewrite(page, "Plans", (data) => {
      data.plans = [{ name: LONG_PLAN, period: "1mo", allowances: [{ type: "leads", amount: 100 }] }, ...(data.plans as unknown[])];
    });
    await page.goto(session.linkTo("/", session.admin));
    const select = page.getByTestId("create-plan");
    await select.waitFor();
    expect(await select.inputValue()).toBe(LONG_PLAN);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(WIDTH);
    const box = (await select.boundingBox())!;
    expect(box.x + box.width).toBeLessThanOrEqual(WIDTH);
  });

  /** A chart's tick labels on its credits axis: their text, and whether each is inside the chart's svg. */
  const ticksOf = (chart: Locator, axis: "yAxis" | "xAxis") =>
    chart.evaluate((figure, which) => {
      const svg = figure.querySelector(".recharts-wrapper > svg.recharts-surface")!.getBoundingClientRect();
      return [...figure.querySelectorAll(`.recharts-${which}-tick-labels .recharts-cartesian-axis-tick-value`)].map((tick) => {
        const box = tick.getBoundingClientRect();
        // Half a pixel of rounding either way.
        return { text: tick.textContent ?? "", inside: box.left >= svg.left - 0.5 && box.right <= svg.right + 0.5 };
      });
    }, axis);

  /** The ticks of a chart whose largest figure is six billion or more: compact ("6B"), all inside the chart. */
  async function expectBillionsTicked(chart: Locator, axis: "yAxis" | "xAxis" = "yAxis"): Promise<void> {
    await expect.poll(async () => (await ticksOf(chart, axis)).length).toBeGreaterThan(1);
    const ticks = await ticksOf(chart, axis);
    expect(ticks.some((t) => /^\d+(\.\d)?B$/.test(t.text)), ticks.map((t) => t.text).join(" ")).toBe(true);
    for (const tick of ticks) {
      expect(tick.text).toMatch(/^-?\d{1,3}(,\d{3})*(\.\d)?[KMB]?$/);
      expect(tick.inside, tick.text).toBe(true);
    }
  }

  /** Buckets enlarged to billions: the first bucket's credits become six billion, held likewise. */
  function enlarge(buckets: Bucket[]): void {
    buckets.forEach((b, i) => {
      const scale = i === 0 ? SIX_BILLION / Math.max(b.credits, 1) : 1_000_000;
      b.credits = i === 0 ? SIX_BILLION : b.credits * scale;
      b.estimated = i === 0 ? SIX_BILLION : b.estimated * scale;
      b.released = 0;
      b.calls = i === 0 ? 7 : b.calls;
      b.averageCredits = b.credits / Math.max(b.calls, 1);
    });
  }

  it("3–4. ticks a subscription's usage in billions inside its charts, and groups Avg / call", async () => {
    const page = await page1280();
    await rewrite(page, "SubscriptionUsage", (data) => {
      enlarge(data.perDay as Bucket[]);
      enlarge(data.perOperation as Bucket[]);
    });
    await page.goto(session.linkTo(`/subscriptions/${rtlSubscription}`, session.admin));
    await page.locator('[data-testid="chart-per-day"] .recharts-bar-rectangle').first().waitFor();
    await expectBillionsTicked(page.getByTestId("chart-per-day"));
    await expectBillionsTicked(page.getByTestId("chart-per-operation"));
    // 6,000,000,000 credits in 7 calls.
    const avg = page.getByTestId("usage-row").first().locator("td").last();
    expect(await avg.textContent()).toBe("857,142,857.1");
  });

  it("3. ticks the Stats page's charts in billions, inside them", async () => {
    const page = await page1280();
    await rewrite(page, "Stats", (data) => {
      for (const key of ["perDay", "perOperation", "perOperationByType", "perSubscriptionByType"]) enlarge(data[key] as Bucket[]);
    });
    await page.goto(session.linkTo("/stats", session.admin));
    await page.locator('[data-testid="chart-per-day"] .recharts-bar-rectangle').first().waitFor();
    await expectBillionsTicked(page.getByTestId("chart-per-day"));
    await expectBillionsTicked(page.getByTestId("chart-per-operation"));
    await expectBillionsTicked(page.getByTestId("chart-top-operations"), "xAxis");
    await expectBillionsTicked(page.getByTestId("chart-top-subscriptions"), "xAxis");
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(WIDTH);
  });
});
