/**
 * A grant with its terms (category, priority, expiry): one statement that adds the credits to the
 * balance (creating the row when there is none), creates the grant and writes the GRANT entry that
 * names it. Grants without terms (initial credits, positive adjustments) need none of this: the
 * ledger trigger makes them PAID, priority 50, never expiring.
 *
 * An expiry must be after the database's now(), judged by the same statement: the database's clock
 * is the one every expiry is measured on (draws, the expiry pass), and an instance's clock may be
 * minutes off it. Judged on an instance 5 minutes behind, a grant already expired was accepted and
 * expired at the next pass; on one 90 s ahead, a grant expiring in a minute was refused.
 */
import { randomUUID } from "node:crypto";
import { sql } from "drizzle-orm";
import { queryRows, type DbOrTx } from "../db/database.js";
import type { GrantCategoryValue } from "../db/schema/grants.js";
import type { BalanceChange } from "../ledger/change-balance.js";
import { entryFromRow, LEDGER_RETURNING, type LedgerEntryRecord, type LedgerRow } from "../ledger/entry.js";
import { expiresAtNotInFuture } from "./grant-input.js";

export interface GrantTerms {
  category: GrantCategoryValue;
  /** 0 to 100, lower spent first. */
  priority: number;
  /** Unused credits expire then; null: never. */
  expiresAt: Date | null;
}

export const DEFAULT_GRANT_TERMS: GrantTerms = Object.freeze({ category: "PAID", priority: 50, expiresAt: null });

/** Writes the grant, or nothing (BAD_USER_INPUT) when its expiry is not after the database's now(). */
export async function grantWithTerms(db: DbOrTx, change: BalanceChange, terms: GrantTerms): Promise<LedgerEntryRecord> {
  const entryId = randomUUID();
  const expiresAt = terms.expiresAt === null ? null : terms.expiresAt.toISOString();
  const rows = await queryRows<LedgerRow>(
    db,
    sql`
      with changed as (
        -- No row when the grant would already have expired: then nothing below is written either.
        insert into credit_balances as b (subscription_id, credit_type, balance)
        select ${change.subscriptionId}::uuid, ${change.creditType}, ${change.delta}::int
         where ${expiresAt}::timestamptz is null or ${expiresAt}::timestamptz > now()
        on conflict (subscription_id, credit_type)
          do update set balance = b.balance + excluded.balance, updated_at = now()
        returning subscription_id, credit_type, balance
      )
      insert into credit_ledger (subscription_id, id, credit_type, kind, amount, balance_after, actor_id, reason, request_id, draws)
      -- Credits added must leave room for the held ones to come back (drizzle/0016_balance_room.sql).
      select subscription_id, ${entryId}::uuid, credit_type, 'GRANT', ${change.delta}::int,
             credit_assert_room(subscription_id, credit_type, balance), ${change.actorId}, ${change.reason},
             ${change.requestId},
             credit_grants_create(subscription_id, credit_type, ${change.delta}::int, ${entryId}::uuid, ${change.reason},
                                  ${terms.category}, ${terms.priority}::int, ${expiresAt}::timestamptz)
        from changed
      returning ${sql.raw(LEDGER_RETURNING)}`,
  );
  if (rows.length === 0) throw expiresAtNotInFuture();
  return entryFromRow(rows[0]);
}
