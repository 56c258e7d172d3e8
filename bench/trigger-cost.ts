/**
 * `npx tsx bench/trigger-cost.ts`: what the live-balance ledger trigger (drizzle/0004) costs the
 * hot path. Runs the charge ledger's own batch debit statement at a fixed concurrency on a fresh
 * database, alternating runs with the trigger enabled and disabled, and prints debits/s of each.
 * Not part of `npm run bench`: a quick check when changing the trigger.
 */
import { randomUUID } from "node:crypto";
import { sql } from "drizzle-orm";
import { holdGroups } from "../src/ledger/hold.js";
import { createPostgresDatabase } from "../test/helpers/databases.js";
import { fundedSubscription } from "../test/helpers/test-app.js";

const CONCURRENCY = Number(process.env.TRIGGER_COST_CONCURRENCY ?? 2);
const BATCH = Number(process.env.TRIGGER_COST_BATCH ?? 10);
const SECONDS = Number(process.env.TRIGGER_COST_SECONDS ?? 4);
const ROUNDS = 3;

const database = await createPostgresDatabase(CONCURRENCY + 2);
try {
  const subscriptions: string[] = [];
  for (let i = 0; i < 200; i++) subscriptions.push(await fundedSubscription(database, `owner-${i}`, { leads: 1_000_000 }));

  async function run(): Promise<number> {
    let debits = 0;
    const deadline = Date.now() + SECONDS * 1000;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async (_, worker) => {
        let n = worker;
        while (Date.now() < deadline) {
          const batch = Array.from({ length: BATCH }, () => {
            const subscriptionId = subscriptions[n++ % subscriptions.length];
            return {
              subscriptionId, creditType: "leads", amount: 1, entryId: randomUUID(), operation: "Mutation.searchLeads", estimated: 1,
              actorId: "bench", adminOverride: false, requestId: "bench", authorize: false, actorIsAdmin: false,
            };
          });
          await holdGroups(database.db, batch.map((hold) => [hold]));
          debits += BATCH;
        }
      }),
    );
    return debits / SECONDS;
  }

  const rates: Record<string, number[]> = { with: [], without: [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const mode of ["with", "without"] as const) {
      await database.db.execute(sql.raw(`alter table credit_ledger ${mode === "with" ? "enable" : "disable"} trigger credit_ledger_balance_changes`));
      rates[mode].push(await run());
    }
  }
  const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
  console.log(
    `batch ${BATCH}, ${CONCURRENCY} concurrent: with trigger ${median(rates.with).toFixed(0)} debits/s, without ${median(rates.without).toFixed(0)} debits/s, ratio ${(median(rates.with) / median(rates.without)).toFixed(3)}`,
  );
} finally {
  await database.dispose();
}
