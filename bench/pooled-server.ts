/**
 * The metered scenario through a transaction-mode pooler (issue 14, DESIGN.md "Performance": metered
 * through PgBouncer ≥ 0.8 × direct). A second server process, with the same settings as the first,
 * reaches the same bench database through a real PgBouncer (Debian's `pgbouncer`, pool_mode =
 * transaction) whose pool has as many server connections as the server's own pool, as Supabase's
 * pooler on port 6543 would. Without pgbouncer installed the scenario is reported as skipped.
 */
import { findPgBouncer, startPgBouncer } from "../test/helpers/pgbouncer.js";
import { startBenchServer, type BenchServer, type BenchServerOptions } from "./server.js";

export interface PooledServer {
  server: BenchServer;
  poolSize: number;
  stop(): Promise<void>;
}

/** The server behind PgBouncer, or the reason it cannot run. */
export async function startPooledServer(options: BenchServerOptions): Promise<PooledServer | { skipped: string }> {
  const executable = findPgBouncer();
  if (!executable) return { skipped: "pgbouncer is not installed (apt-get install -y pgbouncer)" };
  const bouncer = await startPgBouncer(executable, { upstreamUrl: options.databaseUrl, poolSize: options.poolSize, poolMode: "transaction" });
  let server: BenchServer;
  try {
    // No profile: a second profile would overwrite nothing useful and cost the run.
    server = await startBenchServer({ ...options, databaseUrl: bouncer.urlFor(options.databaseUrl), profileDir: undefined });
  } catch (err) {
    await bouncer.stop();
    throw err;
  }
  return {
    server,
    poolSize: options.poolSize,
    async stop() {
      await server.stop();
      await bouncer.stop();
    },
  };
}
