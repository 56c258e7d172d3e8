/**
 * The bench's own database: a fresh bench_<random> on the given server, dropped afterwards, so a run
 * never touches anyone's data and always starts from the same empty tables. The server migrates it
 * at start; `seedBenchData` then opens the subscriptions the scenarios spend from, with GRANT
 * entries so the ledger audit stays clean.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";

export interface BenchDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/** Runs `work` on one connection of its own, closed afterwards whatever happens. */
async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

async function adminQuery(serverUrl: string, text: string): Promise<void> {
  await withClient(serverUrl, (client) => client.query(text));
}

export async function createBenchDatabase(serverUrl: string): Promise<BenchDatabase> {
  const name = `bench_${randomBytes(5).toString("hex")}`;
  await adminQuery(serverUrl, `create database ${name}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  let dropped = false;
  return {
    name,
    url: url.toString(),
    async drop() {
      if (dropped) return;
      dropped = true;
      await adminQuery(serverUrl, `drop database if exists ${name} with (force)`);
    },
  };
}

export interface BenchSubscription {
  id: string;
  ownerId: string;
}

export interface BenchData {
  /** Many subscriptions, one owner each: the spread load. */
  subscriptions: BenchSubscription[];
  /** One subscription every connection spends from: the contended load. */
  hot: BenchSubscription;
}

/** Credits per spread subscription and for the hot one: far more than any run spends. */
export const SPREAD_CREDITS = 10_000_000;
export const HOT_CREDITS = 1_000_000_000;

/**
 * Opens `count` subscriptions with `credits` of every type, each balance made of `grants` grants
 * (one GRANT entry each) with mixed categories, priorities and expiries (some never, the others
 * months away), so a debit walks the spending order of several grants (docs/grants.md).
 */
async function openSubscriptions(pool: pg.Pool, ownerPrefix: string, count: number, credits: number, grants: number): Promise<BenchSubscription[]> {
  const perGrant = Math.floor(credits / grants);
  const { rows } = await pool.query<{ id: string; owner_id: string }>(
    `with subs as (
       insert into billing_subscriptions (owner_id, plan)
       select $1 || i, 'bench' from generate_series(1, $2::int) as i
       returning id, owner_id
     ), balances as (
       insert into credit_balances (subscription_id, credit_type, balance)
       select id, t, $3::int * $4::int from subs cross join unnest(array['ai', 'leads', 'skiptrace']) as t
       returning subscription_id, credit_type, balance
     ), grant_rows as (
       select subscription_id, credit_type, gen_random_uuid() as id, k from balances cross join generate_series(1, $4::int) as k
     ), grants as (
       insert into credit_ledger (subscription_id, id, credit_type, kind, amount, balance_after, actor_id, reason, draws)
       select subscription_id, id, credit_type, 'GRANT', $3::int, $3::int * k, 'bench', 'bench credits',
              credit_grants_create(subscription_id, credit_type, $3::int, id, 'bench credits',
                                   case when k % 2 = 0 then 'PROMOTIONAL' else 'PAID' end, (k * 37) % 101,
                                   case when k % 3 = 1 then null else now() + k * interval '30 days' end)
         from grant_rows
     )
     select id, owner_id from subs`,
    [ownerPrefix, count, perGrant, grants],
  );
  return rows.map((r) => ({ id: r.id, ownerId: r.owner_id }));
}

export async function seedBenchData(url: string, subscriptions: number, grantsPerBalance = 1): Promise<BenchData> {
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  try {
    const spread = await openSubscriptions(pool, "bench-user-", subscriptions, SPREAD_CREDITS, grantsPerBalance);
    const [hot] = await openSubscriptions(pool, "bench-hot-", 1, HOT_CREDITS, grantsPerBalance);
    await pool.query("analyze");
    return { subscriptions: spread, hot };
  } finally {
    await pool.end();
  }
}

/**
 * Settles the database between measured runs, outside the measured time: VACUUM (ANALYZE) so no
 * autovacuum worker wakes up inside the next run to clean what the previous one wrote, then a
 * CHECKPOINT so its dirty pages are not written out during the next run either. pgbench vacuums
 * before every run for the same reason. Every scenario gets the same treatment, so no scenario is
 * billed for another's write debt on this two-core machine. Returns the milliseconds it took.
 */
export async function settleDatabase(url: string): Promise<number> {
  const started = performance.now();
  await withClient(url, async (client) => {
    await client.query("vacuum (analyze)");
    try {
      await client.query("checkpoint");
    } catch (err) {
      // CHECKPOINT needs a superuser or pg_checkpoint; without either the vacuum alone must do.
      if ((err as { code?: string }).code !== "42501") throw err;
    }
  });
  return performance.now() - started;
}

export interface IntegrityReport {
  /** Balances whose ledger does not sum to them (must be 0). */
  auditMismatches: number;
  /** Debits never settled (must be 0 once the server is stopped gracefully). */
  pendingCharges: number;
  debits: number;
}

/** After the run: the ledger audit and what is left pending, checked the way ledgerAudit does. */
export async function checkIntegrity(url: string): Promise<IntegrityReport> {
  return withClient(url, async (client) => {
    const audit = await client.query<{ n: string }>(
      `with sums as (
         select subscription_id, credit_type, sum(amount)::bigint as s from credit_ledger group by 1, 2
       )
       select count(*) as n
         from credit_balances b full join sums on sums.subscription_id = b.subscription_id and sums.credit_type = b.credit_type
        where coalesce(b.balance, 0) <> coalesce(sums.s, 0)`,
    );
    const pending = await client.query<{ n: string }>("select count(*) as n from pending_charges");
    const debits = await client.query<{ n: string }>("select count(*) as n from credit_ledger where kind = 'DEBIT'");
    return { auditMismatches: Number(audit.rows[0].n), pendingCharges: Number(pending.rows[0].n), debits: Number(debits.rows[0].n) };
  });
}

export async function postgresVersion(url: string): Promise<string> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ server_version: string }>("show server_version");
    return rows[0].server_version;
  });
}
