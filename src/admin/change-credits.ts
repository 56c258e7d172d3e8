/**
 * Grants and adjustments by an admin: one ledger statement (src/ledger/change-balance.ts), with the
 * database's refusals turned into answers the admin can act on.
 */
import type { DbOrTx } from "../db/database.js";
import { SQLSTATE, sqlState } from "../db/errors.js";
import { BadUserInputError, NotFoundError } from "../errors/errors.js";
import { changeBalance, type BalanceChange } from "../ledger/change-balance.js";
import type { LedgerEntryRecord } from "../ledger/entry.js";

/** The largest balance a balance row holds (PostgreSQL integer). */
export const MAX_BALANCE = 2_147_483_647;
/** Why a change below the largest balance can still be refused: held credits come back to it. */
export const HELD_COUNT = "(credits held by calls still running count: they come back when the calls settle)";

export async function changeCredits(
  db: DbOrTx,
  change: BalanceChange,
  /** The statement that writes the change; a grant with terms passes src/grants/grant-credits.ts. */
  write: (db: DbOrTx, change: BalanceChange) => Promise<LedgerEntryRecord> = changeBalance,
): Promise<LedgerEntryRecord> {
  try {
    return await write(db, change);
  } catch (err) {
    switch (sqlState(err)) {
      // The balance CHECK (or the ledger's balance_after CHECK): the change would go below zero.
      case SQLSTATE.CHECK_VIOLATION:
        throw new BadUserInputError(
          `A change of ${change.delta} would take the ${change.creditType} balance below zero: balances are never negative, ` +
            `and credits of grants that have expired count for nothing, even before the expiry pass removes them`,
          "delta",
        );
      case SQLSTATE.NUMERIC_OUT_OF_RANGE:
        throw new BadUserInputError(
          `A change of ${change.delta} would take the ${change.creditType} balance above the largest balance, ${MAX_BALANCE} ${HELD_COUNT}`,
          change.kind === "GRANT" ? "amount" : "delta",
        );
      // The balance row's foreign key: the subscription went away between the check and the write.
      case SQLSTATE.FOREIGN_KEY_VIOLATION:
        throw new NotFoundError(`Subscription ${change.subscriptionId} does not exist`);
      default:
        throw err;
    }
  }
}
