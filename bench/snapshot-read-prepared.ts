/**
 * What the preview's snapshot read (src/credits/preview/subscription-snapshots.ts) costs PostgreSQL,
 * in each shape it has had, 20 subscription ids a read, on a fresh bench database, in alternating
 * rounds, on one connection and then on 8 at once:
 * - `bare-named`: the SELECT the server sent until migration 0011, as a named prepared statement
 *   (parsed and planned once per connection; issue 14: names break behind a transaction-mode
 *   pooler, so the server may not send it this way);
 * - `bare-unnamed`: the same SELECT sent unnamed, as the server did (parsed and planned every read);
 * - `function`: `credit_preview_snapshots($1)` (drizzle/0011_preview_snapshots.sql), unnamed, as the
 *   server sends it now (PL/pgSQL caches the plan of the query inside per server session).
 * It prints the PostgreSQL CPU per read (its backends' time from /proc, what the bench's `preview`
 * scenario shares the cores with) and the wall time per read.
 * `npx tsx bench/snapshot-read-prepared.ts [postgres-url]` (under the bench lock on a shared machine).
 */
import pg from "pg";
import { createBenchDatabase, seedBenchData } from "./database.js";
import { cpuPerRequest, sampleCpu } from "./cpu-usage.js";
import { connectDatabase } from "../src/db/connect.js";

const BARE_SQL = `select s.id, s.owner_id, s.plan, s.status, s.status_reason, s.created_at, s.updated_at,
  (select json_agg(json_build_array(b.credit_type, b.balance, b.updated_at) order by b.credit_type)
     from credit_balances b where b.subscription_id = s.id) as balances
  from billing_subscriptions s where s.id = any($1::uuid[])`;

const SHAPES = {
  "bare-named": { name: "snapshot_read", text: BARE_SQL },
  "bare-unnamed": { text: BARE_SQL },
  function: { text: "select credit_preview_snapshots($1::uuid[]) as snapshots" },
} as const;
type Shape = keyof typeof SHAPES;

const READS = 4_000;
const IDS_PER_READ = 20;

interface Timing {
  postgresMs: number;
  wallMs: number;
}

async function timeReads(pool: pg.Pool, databaseName: string, ids: string[], concurrency: number, shape: Shape): Promise<Timing> {
  let next = 0;
  const before = sampleCpu(process.pid, databaseName);
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      const client = await pool.connect();
      try {
        while (next < READS) {
          const i = next++;
          const batch = Array.from({ length: IDS_PER_READ }, (_, k) => ids[(i * IDS_PER_READ + k) % ids.length]);
          await client.query({ ...SHAPES[shape], values: [batch] });
        }
      } finally {
        client.release();
      }
    }),
  );
  const wallMs = Number(process.hrtime.bigint() - started) / 1e6 / READS;
  return { postgresMs: cpuPerRequest(before, sampleCpu(process.pid, databaseName), READS).postgresMs, wallMs };
}

async function main(): Promise<void> {
  const server = process.argv[2] ?? process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
  const database = await createBenchDatabase(server);
  try {
    const handle = await connectDatabase({ databaseUrl: database.url, poolSize: 2 });
    await handle.close();
    const data = await seedBenchData(database.url, 1_000);
    const ids = data.subscriptions.map((s) => s.id);
    const shapes = Object.keys(SHAPES) as Shape[];
    for (const concurrency of [1, 8]) {
      const pool = new pg.Pool({ connectionString: database.url, max: concurrency });
      const results = new Map<Shape, Timing[]>(shapes.map((shape) => [shape, []]));
      for (let round = 0; round < 3; round++) {
        for (const shape of shapes) results.get(shape)!.push(await timeReads(pool, database.name, ids, concurrency, shape));
      }
      await pool.end();
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
      console.log(`concurrency ${concurrency}, per read (median of 3 rounds of ${READS}):`);
      for (const [shape, timings] of results) {
        const cpu = median(timings.map((t) => t.postgresMs * 1000)).toFixed(0);
        const wall = median(timings.map((t) => t.wallMs * 1000)).toFixed(0);
        console.log(`  ${shape.padEnd(13)} PostgreSQL CPU ${cpu.padStart(4)} µs, wall ${wall.padStart(5)} µs`);
      }
    }
  } finally {
    await database.drop();
  }
}

await main();
