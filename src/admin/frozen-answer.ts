/**
 * Freezes the answer of an idempotent mutation, so a retry gets the first call's response (DESIGN.md,
 * "Retries and crashes"). Storing the mutation's return value is not enough: the nested fields of
 * BillingSubscription (balances, grants, currentPeriodEnd) and CreditBalance (lowBalanceThreshold,
 * held) are field resolvers that read the database when the response is written, so a replay would
 * show the data as it is now (a threshold set since, credits spent since). With an Idempotency-Key,
 * idempotentMutation runs these functions in the mutation's transaction and stores what they read in
 * the value's `frozen`; those field resolvers answer from it when it is there.
 */
import type { DbOrTx } from "../db/database.js";
import { grantsOfSubscriptions, periodEndsOfSubscriptions } from "../grants/grant-store.js";
import { toCreditGrant } from "../graphql/resolvers/grants-resolver.js";
import type { CreditBalance, FrozenBalanceFields, FrozenSubscriptionFields } from "../graphql/types/subscription.js";
import { balancesOfSubscriptions, heldOfSubscriptions } from "../ledger/balances.js";
import { thresholdsOf } from "../live/live-store.js";

/** A balance with its threshold and held credits as they are in `db` now. */
export async function freezeBalance<B extends CreditBalance & { subscriptionId: string }>(db: DbOrTx, balance: B): Promise<B> {
  const thresholds = await thresholdsOf(db, [balance.subscriptionId]);
  const held = await heldOfSubscriptions(db, [balance.subscriptionId]);
  return { ...balance, frozen: balanceFields(balance.type, thresholds, held) };
}

/** A subscription (a record or its GraphQL shape) with everything its field resolvers show, as it is in `db` now. */
export async function freezeSubscription<S extends { id: string }>(db: DbOrTx, subscription: S): Promise<S & { frozen: FrozenSubscriptionFields }> {
  return { ...subscription, frozen: await subscriptionFields(db, subscription.id) };
}

// One statement after another: they share the transaction's one connection anyway.
async function subscriptionFields(db: DbOrTx, subscriptionId: string): Promise<FrozenSubscriptionFields> {
  const ids = [subscriptionId];
  const balances = await balancesOfSubscriptions(db, ids);
  const thresholds = await thresholdsOf(db, ids);
  const held = await heldOfSubscriptions(db, ids);
  const grants = await grantsOfSubscriptions(db, ids, true);
  const spendableGrants = await grantsOfSubscriptions(db, ids, false);
  const periodEnds = await periodEndsOfSubscriptions(db, ids);
  return {
    balances: balances.map((b) => ({
      type: b.creditType,
      balance: b.balance,
      updatedAt: b.updatedAt,
      subscriptionId: b.subscriptionId,
      frozen: balanceFields(b.creditType, thresholds, held),
    })),
    grants: grants.map(toCreditGrant),
    spendableGrants: spendableGrants.map(toCreditGrant),
    currentPeriodEnd: periodEnds.get(subscriptionId) ?? null,
  };
}

/** One balance's fields from its subscription's thresholds and holds (a type without a row: no threshold, nothing held). */
function balanceFields(
  creditType: string,
  thresholds: readonly { creditType: string; lowBalance: number }[],
  held: readonly { creditType: string; held: number }[],
): FrozenBalanceFields {
  return {
    lowBalanceThreshold: thresholds.find((t) => t.creditType === creditType)?.lowBalance ?? null,
    held: held.find((h) => h.creditType === creditType)?.held ?? 0,
  };
}
