/**
 * The admin operations as functions, for a host that exposes them its own way (its own mutations, a
 * CLI, a job): each is one ledger statement, refused with a coded error (BAD_USER_INPUT, NOT_FOUND,
 * CONFLICT) a host can pass on as it is. Authorizing the admin is the host's business.
 */
import { changeCredits } from "../admin/change-credits.js";
import { refundCharge } from "../admin/refund.js";
import type { Database } from "../db/database.js";
import { BadUserInputError, NotFoundError } from "../errors/errors.js";
import { balancesOfSubscriptions } from "../ledger/balances.js";
import type { LedgerEntryRecord } from "../ledger/entry.js";
import { openSubscription, subscriptionsByIds, type SubscriptionRecord } from "../subscriptions/subscription-store.js";
import { isUuid } from "../util/uuid.js";

export interface BalanceChangeInput {
  subscriptionId: string;
  creditType: string;
  reason?: string;
  /** Who made the change, for the ledger (an admin's user id). */
  actorId?: string;
  requestId?: string;
}

export interface AdminOperations {
  /** Opens a subscription with a zero balance of every credit type, plus the starting credits given. */
  createSubscription(input: { ownerId: string; plan?: string; initialCredits?: Record<string, number>; actorId?: string }): Promise<SubscriptionRecord>;
  /** Adds credits (amount ≥ 1). */
  grant(input: BalanceChangeInput & { amount: number }): Promise<LedgerEntryRecord>;
  /** Corrects a balance by a signed delta; never below zero. */
  adjust(input: BalanceChangeInput & { delta: number }): Promise<LedgerEntryRecord>;
  /** Refunds a settled DEBIT entry, whole or `amount` of it. */
  refund(input: { entryId: string; amount?: number; reason: string; actorId?: string; requestId?: string }): Promise<LedgerEntryRecord>;
  /** The subscription's balances by credit type; NOT_FOUND when it does not exist (as grant, adjust). */
  balances(subscriptionId: string): Promise<Record<string, number>>;
}

export function createAdminOperations(db: Database, creditTypes: readonly string[]): AdminOperations {
  const known = new Set(creditTypes);
  const checkType = (type: string) => {
    if (!known.has(type)) throw new BadUserInputError(`Unknown credit type "${type}": use one of ${creditTypes.join(", ")}`, "creditType");
  };
  const checkId = (id: string, field: string) => {
    if (!isUuid(id)) throw new BadUserInputError(`${field} must be a UUID`, field);
  };
  const checkWhole = (n: number, field: string, min: number) => {
    if (!Number.isInteger(n) || n < min) throw new BadUserInputError(`${field} must be a whole number of at least ${min}`, field);
  };
  return {
    async createSubscription({ ownerId, plan = "default", initialCredits = {}, actorId }) {
      for (const [type, amount] of Object.entries(initialCredits)) {
        checkType(type);
        checkWhole(amount, "initialCredits", 0);
      }
      return openSubscription(db, {
        ownerId,
        plan,
        initialCredits: Object.entries(initialCredits).map(([type, amount]) => ({ type, amount })),
        actorId: actorId ?? null,
        requestId: null,
        creditTypes,
      });
    },
    async grant({ subscriptionId, creditType, amount, reason, actorId, requestId }) {
      checkId(subscriptionId, "subscriptionId");
      checkType(creditType);
      checkWhole(amount, "amount", 1);
      return changeCredits(db, { subscriptionId, creditType, kind: "GRANT", delta: amount, reason: reason ?? null, actorId: actorId ?? null, requestId: requestId ?? null });
    },
    async adjust({ subscriptionId, creditType, delta, reason, actorId, requestId }) {
      checkId(subscriptionId, "subscriptionId");
      checkType(creditType);
      if (!Number.isInteger(delta) || delta === 0) throw new BadUserInputError("delta must be a whole number other than 0", "delta");
      return changeCredits(db, { subscriptionId, creditType, kind: "ADJUSTMENT", delta, reason: reason ?? null, actorId: actorId ?? null, requestId: requestId ?? null });
    },
    async refund({ entryId, amount, reason, actorId, requestId }) {
      checkId(entryId, "entryId");
      if (amount !== undefined) checkWhole(amount, "amount", 1);
      return refundCharge(db, { entryId, amount, reason, actorId: actorId ?? "", requestId: requestId ?? "" });
    },
    async balances(subscriptionId) {
      checkId(subscriptionId, "subscriptionId");
      const rows = await balancesOfSubscriptions(db, [subscriptionId]);
      // Every subscription has a balance row of each credit type (opened with it, or added at start):
      // none at all is a subscription that does not exist, which is said as grant says it, not as {}.
      if (rows.length === 0 && (await subscriptionsByIds(db, [subscriptionId])).length === 0) {
        throw new NotFoundError(`Subscription ${subscriptionId} does not exist`);
      }
      return Object.fromEntries(rows.map((r) => [r.creditType, r.balance]));
    },
  };
}
