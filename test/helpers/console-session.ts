/**
 * A console under test in chromium: the real entry point (src/main.ts in a child process) on a fresh
 * PGlite database with development mode's demo subscription (100 credits of each type), tokens of
 * the demo user and of an admin, and a fresh browser context per page whose problems (console errors,
 * failed requests, HTTP errors) the test file checks after each test.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { DEMO_USER_ID } from "../../src/app/dev-seed.js";
import { mintToken } from "../../src/auth/mint.js";
import { launchChromium, watchProblems, type PageProblems } from "./browser.js";
import { spawnServer, type SpawnedServer } from "./spawn-server.js";
import { postGraphQL, type GraphQLResponse } from "./test-app.js";

export interface ConsoleSession {
  readonly server: SpawnedServer;
  readonly browser: Browser;
  /** The demo subscription the server made at its first start. */
  readonly demoSubscription: string;
  /** Tokens: an admin's ("browser-admin") and the demo user's. */
  readonly admin: string;
  readonly user: string;
  /** The problems of the page freshPage() opened last (none before the first). */
  readonly problems: PageProblems | undefined;
  /** A page in a new browser context (the previous one closed), 1360 × 900. */
  freshPage(): Promise<Page>;
  /** A sign-in link to a page of the console. */
  linkTo(path: string, token: string): string;
  /** A GraphQL request to the server, as `token`. */
  gql(query: string, variables: Record<string, unknown>, token: string): Promise<GraphQLResponse>;
  /** A subscription's balance of one type, read as the admin. */
  balanceOf(subscriptionId: string, type: string): Promise<number>;
  close(): Promise<void>;
}

export async function startConsoleSession(name: string): Promise<ConsoleSession> {
  const dataDir = mkdtempSync(join(tmpdir(), `${name}-`));
  const server = await spawnServer({ PGLITE_DIR: join(dataDir, "pglite"), RATE_LIMIT_DEFAULT: "1000/1m" }, 120_000);
  const demoSubscription = /Demo subscription: (\S+)/.exec(server.output())![1];
  const admin = await mintToken({ sub: "browser-admin", admin: true });
  const user = await mintToken({ sub: DEMO_USER_ID });
  const browser = await launchChromium();
  let context: BrowserContext | undefined;
  let problems: PageProblems | undefined;
  const gql: ConsoleSession["gql"] = (query, variables, token) => postGraphQL(`${server.url}/graphql`, query, variables, { token });
  return {
    server,
    browser,
    demoSubscription,
    admin,
    user,
    get problems() {
      return problems;
    },
    async freshPage() {
      await context?.close();
      context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
      const page = await context.newPage();
      await page.goto("about:blank");
      problems = watchProblems(page);
      return page;
    },
    linkTo: (path, token) => `${server.url}/console${path === "/" ? "" : path}#token=${token}`,
    gql,
    async balanceOf(subscriptionId, type) {
      const res = await gql(`query ($id: ID!) { subscription(id: $id) { balances { type balance } } }`, { id: subscriptionId }, admin);
      return res.body.data.subscription.balances.find((b: { type: string }) => b.type === type).balance;
    },
    async close() {
      await context?.close();
      await browser.close();
      server.child.kill("SIGTERM");
      await server.exited;
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
