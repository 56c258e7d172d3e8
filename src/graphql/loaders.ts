/**
 * Per-request DataLoaders: every subscription and balance a request touches is read once, in one
 * batched query per tick, however many fields ask for it; a read that lost its connection is sent
 * again (src/db/lost-connection-retry.ts).
 */
import DataLoader from "dataloader";
import type { DbOrTx } from "../db/database.js";
import { retryOnLostConnection } from "../db/lost-connection-retry.js";
import { balancesOfSubscriptions, heldOfSubscriptions, type BalanceRecord } from "../ledger/balances.js";
import { subscriptionsByIds, type SubscriptionRecord } from "../subscriptions/subscription-store.js";
import { createGrantLoaders, type GrantLoaders } from "../grants/grant-loaders.js";

export interface RequestLoaders {
  subscription: DataLoader<string, SubscriptionRecord | undefined>;
  balances: DataLoader<string, BalanceRecord[]>;
  /** Grants, ledger draws and plan periods (src/grants/grant-loaders.ts). */
  grants: GrantLoaders;
  /** Credits held by open holds, per credit type, by subscription id. */
  held: DataLoader<string, ReadonlyMap<string, number>>;
}

export function createLoaders(db: DbOrTx): RequestLoaders {
  return {
    subscription: new DataLoader(async (ids) => {
      const rows = await retryOnLostConnection(() => subscriptionsByIds(db, ids));
      const byId = new Map(rows.map((r) => [r.id, r]));
      return ids.map((id) => byId.get(id));
    }),
    held: new DataLoader(async (ids) => {
      const rows = await retryOnLostConnection(() => heldOfSubscriptions(db, ids));
      return ids.map((id) => new Map(rows.filter((r) => r.subscriptionId === id).map((r) => [r.creditType, r.held])));
    }),
    balances: new DataLoader(async (ids) => {
      const rows = await retryOnLostConnection(() => balancesOfSubscriptions(db, ids));
      return ids.map((id) => rows.filter((r) => r.subscriptionId === id));
    }),
    grants: createGrantLoaders(db),
  };
}
