import type { Database } from "../../src/db/database.js";

/**
 * The real database, but every statement fails as a refused connection for the first `awayMs`
 * (as while PostgreSQL restarts), then goes through.
 */
export function awayFor(db: Database, awayMs: number): Database {
  const backAt = Date.now() + awayMs;
  return new Proxy(db, {
    get(target, prop, receiver) {
      if (prop !== "execute") return Reflect.get(target, prop, receiver);
      return async (query: unknown) => {
        if (Date.now() < backAt) throw Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" });
        return (target.execute as (q: unknown) => Promise<unknown>)(query);
      };
    },
  });
}
