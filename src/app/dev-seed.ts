/**
 * Development mode only: an empty database gets a demo subscription with 100 credits of each type,
 * so a first `npm start` can be tried at once with the tokens the banner prints.
 */
import { sql } from "drizzle-orm";
import type { Database } from "../db/database.js";
import { CREDIT_TYPES } from "../credits/credit-types.js";
import { firstSubscription, openSubscription, subscriptionsOfOwner } from "../subscriptions/subscription-store.js";

export const DEMO_USER_ID = "demo-user";
export const DEMO_ADMIN_ID = "demo-admin";
export const DEMO_CREDITS = 100;

/** Names the seeding lock among this database's advisory locks (arbitrary; src/db/migrate-postgres.ts has 7_231_004). */
const DEMO_SEED_LOCK_KEY = 7_231_005;

/**
 * Returns the demo subscription's id: created now on an empty database, or the demo user's existing one.
 *
 * Instances started together on one empty database all get here at once, and a plain "none yet?
 * create one" let each of them create its own. So the check and the creation run in one transaction
 * under a transaction-scoped advisory lock (safe through a transaction-mode pooler, released at the
 * commit): the first instance creates the subscription and commits; the others wait for the lock,
 * then find it (each statement sees what committed before it) and report the same id. PGlite has one
 * connection and runs its transactions one at a time; the lock costs nothing there.
 */
export async function ensureDemoSubscription(db: Database): Promise<string | undefined> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${DEMO_SEED_LOCK_KEY}::bigint)`);
    if (await firstSubscription(tx)) return (await subscriptionsOfOwner(tx, DEMO_USER_ID))[0]?.id;
    const subscription = await openSubscription(tx, {
      ownerId: DEMO_USER_ID,
      plan: "demo",
      initialCredits: CREDIT_TYPES.map((t) => ({ type: t.name, amount: DEMO_CREDITS })),
      actorId: "system",
      requestId: null,
    });
    return subscription.id;
  });
}
