/**
 * A database with two weeks of history for the console's browser tests and screenshots, made the
 * way a deployment makes it: a first server (src/main.ts) on a PGlite folder takes real calls over
 * HTTP (the demo user's metered calls, some failing with simulated system errors and so refunded;
 * an admin opening two more customers). Once it has stopped, the entries are spread back over the
 * last 14 days in seq order (one UPDATE with the append-only triggers off for that session), so the
 * per-day charts have days to draw. The tested server then opens the same folder.
 */
import { sql } from "drizzle-orm";
import { mintToken } from "../../src/auth/mint.js";
import { DEMO_USER_ID } from "../../src/app/dev-seed.js";
import { connectDatabase } from "../../src/db/connect.js";
import { queryRows } from "../../src/db/database.js";
import { spawnServer } from "./spawn-server.js";
import { postGraphQL } from "./test-app.js";
import { documentText } from "./typed-gql.js";
import { RunAiTaskDocument, SearchLeadsDocument, SearchMlsDocument, SkipTraceDocument } from "../generated/graphql.js";

export const HISTORY_DAYS = 14;
export const CUSTOMERS = ["customer-alpha", "customer-beta"] as const;

export interface ConsoleHistory {
  demoSubscription: string;
  customers: Record<(typeof CUSTOMERS)[number], string>;
}

export async function seedConsoleHistory(pgliteDir: string): Promise<ConsoleHistory> {
  const server = await spawnServer({ PGLITE_DIR: pgliteDir, SIMULATE_FAILURES: "1", RATE_LIMIT_DEFAULT: "1000/1m", CONSOLE_BUILD: "off" }, 120_000);
  try {
    const demoSubscription = /Demo subscription: (\S+)/.exec(server.output())![1];
    const admin = await mintToken({ sub: "browser-admin", admin: true });
    const user = await mintToken({ sub: DEMO_USER_ID });
    const call = async (document: string, input: Record<string, unknown>, fail = false) => {
      const headers: Record<string, string> = fail ? { "x-simulate-failure": "system" } : {};
      const res = await postGraphQL(`${server.url}/graphql`, document, { subscriptionId: demoSubscription, input }, { token: user, headers });
      if (!fail && res.body.errors) throw new Error(`seeding call failed: ${JSON.stringify(res.body.errors)}`);
    };
    const customers = {} as ConsoleHistory["customers"];
    await postGraphQL(
      `${server.url}/graphql`,
      `mutation ($input: GrantCreditsInput!) { grantCredits(input: $input) { id } }`,
      { input: { subscriptionId: demoSubscription, type: "leads", amount: 400, reason: "Starter pack" } },
      { token: admin },
    );
    for (let i = 0; i < 28; i++) {
      await call(documentText(RunAiTaskDocument), { prompt: `Summarise account ${i} `.repeat(1 + (i % 5) * 40), maxTokens: 400 + (i % 4) * 700 }, i % 9 === 4);
      if (i % 2 === 0) await call(documentText(SearchLeadsDocument), { query: `roofers ${i}`, limit: 3 + (i % 6) * 4 }, i % 10 === 6);
      if (i % 3 === 0) await call(documentText(SkipTraceDocument), { records: [{ firstName: "Ada", lastName: `Lovelace${i}`, address: `${i} Main St` }] });
      if (i % 4 === 1) await call(documentText(SearchMlsDocument), { area: "Austin, TX", limit: 50 });
    }
    for (const owner of CUSTOMERS) {
      const res = await postGraphQL(
        `${server.url}/graphql`,
        `mutation ($input: CreateSubscriptionInput!) { createSubscription(input: $input) { id } }`,
        { input: { ownerId: owner, plan: "pro", initialCredits: [{ type: "leads", amount: 500 }] } },
        { token: admin },
      );
      customers[owner] = res.body.data.createSubscription.id;
    }
    server.child.kill("SIGTERM");
    await server.exited;
    await backdate(pgliteDir);
    return { demoSubscription, customers };
  } finally {
    if (server.child.exitCode === null) server.child.kill("SIGKILL");
  }
}

/** Spreads every ledger entry (in seq order) and subscription back over the last HISTORY_DAYS days. */
async function backdate(pgliteDir: string): Promise<void> {
  const database = await connectDatabase({ pgliteDir });
  try {
    // Fixture only: the append-only trigger refuses UPDATE, so triggers are off for this session.
    await queryRows(database.db, sql`set session_replication_role = replica`);
    await queryRows(
      database.db,
      sql`update credit_ledger l
             set created_at = l.created_at - make_interval(days => ${HISTORY_DAYS} - (r.rank * ${HISTORY_DAYS} / r.total)::int)
            from (select id, row_number() over (order by seq) - 1 as rank, count(*) over () as total from credit_ledger) r
           where l.id = r.id`,
    );
    await queryRows(database.db, sql`update billing_subscriptions set created_at = created_at - make_interval(days => ${HISTORY_DAYS})`);
  } finally {
    await database.close();
  }
}
