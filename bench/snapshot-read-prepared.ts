/**
 * Is the preview's snapshot read measurably faster as a named prepared statement? (Issue 14: a named
 * statement breaks behind a transaction-mode pooler, so it is kept only if it pays.) Runs the read
 * the server runs (src/credits/preview/subscription-snapshots.ts), 20 subscription ids a read, on a
 * fresh bench database: as a named prepared statement and unnamed (what the server sends now),
 * alternating rounds, on one connection and then on 8 at once. `npx tsx bench/snapshot-read-prepared.ts [postgres-url]`.
 */
import pg from "pg";
import { createBenchDatabase, seedBenchData } from "./database.js";
import { connectDatabase } from "../src/db/connect.js";

const SNAPSHOT_SQL = `select s.id, s.owner_id, s.plan, s.status, s.status_reason, s.created_at, s.updated_at,
  (select json_agg(json_build_array(b.credit_type, b.balance, b.updated_at) order by b.credit_type)
     from credit_balances b where b.subscription_id = s.id) as balances
  from billing_subscriptions s where s.id = any($1::uuid[])`;

const READS = 4_000;
const IDS_PER_READ = 20;

async function timeReads(pool: pg.Pool, ids: string[], concurrency: number, named: boolean): Promise<number> {
  let next = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      const client = await pool.connect();
      try {
        while (next < READS) {
          const i = next++;
          const batch = Array.from({ length: IDS_PER_READ }, (_, k) => ids[(i * IDS_PER_READ + k) % ids.length]);
          await client.query(named ? { name: "snapshot_read", text: SNAPSHOT_SQL, values: [batch] } : { text: SNAPSHOT_SQL, values: [batch] });
        }
      } finally {
        client.release();
      }
    }),
  );
  return Number(process.hrtime.bigint() - started) / 1e6 / READS;
}

async function main(): Promise<void> {
  const server = process.argv[2] ?? process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
  const database = await createBenchDatabase(server);
  try {
    const handle = await connectDatabase({ databaseUrl: database.url, poolSize: 2 });
    await handle.close();
    const data = await seedBenchData(database.url, 1_000);
    const ids = data.subscriptions.map((s) => s.id);
    for (const concurrency of [1, 8]) {
      const pool = new pg.Pool({ connectionString: database.url, max: concurrency });
      const results = { named: [] as number[], unnamed: [] as number[] };
      for (let round = 0; round < 3; round++) {
        results.named.push(await timeReads(pool, ids, concurrency, true));
        results.unnamed.push(await timeReads(pool, ids, concurrency, false));
      }
      await pool.end();
      const best = (xs: number[]) => Math.min(...xs).toFixed(3);
      console.log(`concurrency ${concurrency}: ms per read (best of 3) named ${best(results.named)}, unnamed ${best(results.unnamed)}`);
    }
  } finally {
    await database.drop();
  }
}

await main();
