/** Subscriptions: opening them (with a zero balance of every credit type and optional grants), reading them, changing status. */
import { eq, inArray } from "drizzle-orm";
import type { Database, DbOrTx } from "../db/database.js";
import { creditBalances } from "../db/schema/balances.js";
import { billingSubscriptions, type SubscriptionStatusValue } from "../db/schema/subscriptions.js";
import { CREDIT_TYPES } from "../credits/credit-types.js";
import { changeBalance } from "../ledger/change-balance.js";
import type { PlanDefinition } from "../plans/plan-config.js";
import { startFirstPeriod } from "../plans/plan-periods.js";

export type SubscriptionRecord = typeof billingSubscriptions.$inferSelect;

export interface OpenSubscription {
  ownerId: string;
  plan: string;
  initialCredits?: { type: string; amount: number }[];
  actorId: string | null;
  requestId: string | null;
  /** The configured plan named by `plan`, if any: its first period starts at once (src/plans). */
  planDefinition?: PlanDefinition;
  /** The credit types it gets a zero balance of (this server's CREDIT_TYPES unless a library host says otherwise). */
  creditTypes?: readonly string[];
}

/** Opens a subscription in one transaction: the row, a balance of each type, and a GRANT per starting amount. */
export async function openSubscription(db: DbOrTx, request: OpenSubscription): Promise<SubscriptionRecord> {
  return db.transaction(async (tx) => {
    const [subscription] = await tx
      .insert(billingSubscriptions)
      .values({ ownerId: request.ownerId, plan: request.plan })
      .returning();
    await tx
      .insert(creditBalances)
      .values((request.creditTypes ?? CREDIT_TYPES.map((t) => t.name)).map((creditType) => ({ subscriptionId: subscription.id, creditType, balance: 0 })));
    for (const grant of request.initialCredits ?? []) {
      if (grant.amount === 0) continue;
      await changeBalance(tx, {
        subscriptionId: subscription.id,
        creditType: grant.type,
        kind: "GRANT",
        delta: grant.amount,
        actorId: request.actorId,
        reason: "initial credits",
        requestId: request.requestId,
      });
    }
    if (request.planDefinition) await startFirstPeriod(tx, subscription.id, request.planDefinition);
    return subscription;
  });
}

export async function subscriptionsByIds(db: DbOrTx, ids: readonly string[]): Promise<SubscriptionRecord[]> {
  if (ids.length === 0) return [];
  return db.select().from(billingSubscriptions).where(inArray(billingSubscriptions.id, [...ids]));
}

export async function subscriptionsOfOwner(db: DbOrTx, ownerId: string): Promise<SubscriptionRecord[]> {
  return db
    .select()
    .from(billingSubscriptions)
    .where(eq(billingSubscriptions.ownerId, ownerId))
    .orderBy(billingSubscriptions.createdAt, billingSubscriptions.id);
}

export async function setSubscriptionStatus(
  db: DbOrTx,
  id: string,
  status: SubscriptionStatusValue,
  reason: string,
): Promise<SubscriptionRecord | undefined> {
  const [row] = await db
    .update(billingSubscriptions)
    .set({ status, statusReason: reason, updatedAt: new Date() })
    .where(eq(billingSubscriptions.id, id))
    .returning();
  return row;
}

/** Any subscription at all? Development mode seeds a demo one into an empty database. */
export async function firstSubscription(db: DbOrTx): Promise<SubscriptionRecord | undefined> {
  const [row] = await db.select().from(billingSubscriptions).orderBy(billingSubscriptions.createdAt).limit(1);
  return row;
}
