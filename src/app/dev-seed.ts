/**
 * Development mode only: an empty database gets a demo subscription with 100 credits of each type,
 * so a first `npm start` can be tried at once with the tokens the banner prints.
 */
import type { Database } from "../db/database.js";
import { CREDIT_TYPES } from "../credits/credit-types.js";
import { firstSubscription, openSubscription, subscriptionsOfOwner } from "../subscriptions/subscription-store.js";

export const DEMO_USER_ID = "demo-user";
export const DEMO_ADMIN_ID = "demo-admin";
export const DEMO_CREDITS = 100;

/** Returns the demo subscription's id: created now on an empty database, or the demo user's existing one. */
export async function ensureDemoSubscription(db: Database): Promise<string | undefined> {
  const existing = await firstSubscription(db);
  if (existing) {
    const demo = await subscriptionsOfOwner(db, DEMO_USER_ID);
    return demo[0]?.id;
  }
  const subscription = await openSubscription(db, {
    ownerId: DEMO_USER_ID,
    plan: "demo",
    initialCredits: CREDIT_TYPES.map((t) => ({ type: t.name, amount: DEMO_CREDITS })),
    actorId: "system",
    requestId: null,
  });
  return subscription.id;
}
