/**
 * A pg pool whose clients' lost connections neither crash the process nor leak the pool.
 */
import type { Pool, PoolClient } from "pg";
import type { Logger } from "pino";

const watchedPools = new WeakSet<Pool>();

/**
 * Gives every client of a pg pool an 'error' listener for its whole life: the server's pools
 * (connect.ts), and a pool a library host opened and passed to createCredits (create-credits.ts).
 * A client whose connection dies (pg_terminate_backend, a server restart, a pooler dropping it) emits 'error' (57P01 when no
 * statement is running, then "Connection terminated unexpectedly" when the socket closes), and Node
 * exits on an 'error' event nobody listens to. pg-pool listens only while a client is idle in the
 * pool: from pool.connect() to release(), as in every drizzle transaction (checked out across the
 * awaits between its statements), the client had no listener, and one killed backend crashed the
 * process. The statement that was running fails on its own (a lost connection, retried or refunded
 * by its caller). Logged once per client, at warn.
 *
 * A checked-out client whose connection died is also given back at once, as broken (the pool drops
 * it and opens a fresh one when needed), and its holder's later release() does nothing: drizzle's
 * transaction() releases its client only after BEGIN succeeded, so a BEGIN cut off by the kill kept
 * the client out of the pool for good, and after DATABASE_POOL_SIZE such kills every statement of
 * the instance waited for a client that never came back ("timeout exceeded when trying to connect",
 * /health 503 for good).
 *
 * Clients the pool opened before are covered at their next checkout; a pool given twice is set up once.
 */
export function listenForPoolErrors(pool: Pool, logger: Logger | undefined): void {
  if (watchedPools.has(pool)) return;
  watchedPools.add(pool);
  const checkedOut = new WeakSet<PoolClient>();
  const listened = new WeakSet<PoolClient>();
  const listen = (client: PoolClient) => {
    if (listened.has(client)) return;
    listened.add(client);
    let logged = false;
    client.on("error", (err) => {
      if (!logged) {
        logged = true;
        logger?.warn({ event: "db.connection_lost", err: { message: err.message } }, "database connection lost");
      }
      if (checkedOut.has(client)) {
        client.release(err);
        client.release = () => undefined;
      }
    });
  };
  pool.on("connect", listen);
  pool.on("acquire", (client) => {
    listen(client);
    checkedOut.add(client);
  });
  pool.on("release", (_err, client) => checkedOut.delete(client));
  // pg-pool also re-emits an idle client's 'error' on the pool, and drops that client: it must be
  // listened to (or the process exits), and the client's own listener above has logged it.
  pool.on("error", () => undefined);
}

/** A node-postgres pool, as drizzle's node-postgres database exposes it (`db.$client`). */
export function isPgPool(value: unknown): value is Pool {
  const candidate = value as Partial<Pool> | null | undefined;
  return typeof candidate?.connect === "function" && typeof candidate.on === "function" && typeof candidate.totalCount === "number";
}
