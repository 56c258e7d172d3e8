/** Per-request DataLoaders for grants, ledger draws and plan periods: one query per batch, however many fields ask. */
import DataLoader from "dataloader";
import type { DbOrTx } from "../db/database.js";
import { drawsOfEntries, grantsOfSubscriptions, periodEndsOfSubscriptions, type GrantDrawRecord, type GrantRecord } from "./grant-store.js";
import { retryOnLostConnection } from "../db/lost-connection-retry.js";

export interface GrantLoaders {
  /** Spendable grants of a subscription, in spending order. */
  spendable: DataLoader<string, GrantRecord[]>;
  /** Every grant of a subscription, spent and expired ones included, in spending order. */
  all: DataLoader<string, GrantRecord[]>;
  draws: DataLoader<{ subscriptionId: string; entryId: string }, GrantDrawRecord[], string>;
  periodEnd: DataLoader<string, Date | null>;
}

function bySubscription(db: DbOrTx, includeSpent: boolean): DataLoader<string, GrantRecord[]> {
  return new DataLoader(async (ids) => {
    const rows = await retryOnLostConnection(() => grantsOfSubscriptions(db, ids, includeSpent));
    return ids.map((id) => rows.filter((r) => r.subscriptionId === id));
  });
}

export function createGrantLoaders(db: DbOrTx): GrantLoaders {
  return {
    spendable: bySubscription(db, false),
    all: bySubscription(db, true),
    draws: new DataLoader(
      async (keys) => {
        const byId = await retryOnLostConnection(() => drawsOfEntries(db, keys));
        return keys.map((k) => byId.get(k.entryId) ?? []);
      },
      { cacheKeyFn: (k) => `${k.subscriptionId}/${k.entryId}` },
    ),
    periodEnd: new DataLoader(async (ids) => {
      const ends = await retryOnLostConnection(() => periodEndsOfSubscriptions(db, ids));
      return ids.map((id) => ends.get(id) ?? null);
    }),
  };
}
