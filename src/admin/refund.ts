/** Refunds by an admin: src/ledger/refund-charge.ts, with each refusal turned into a clear error. */
import type { DbOrTx } from "../db/database.js";
import { BadUserInputError, ConflictError, NotFoundError } from "../errors/errors.js";
import type { LedgerEntryRecord } from "../ledger/entry.js";
import { refundDebit, type RefundChargeRequest } from "../ledger/refund-charge.js";
import { HELD_COUNT, MAX_BALANCE } from "./change-credits.js";
import { STILL_RUNNING_RETRY_AFTER_SECONDS } from "../idempotency/still-running.js";

export async function refundCharge(db: DbOrTx, request: RefundChargeRequest): Promise<LedgerEntryRecord> {
  const outcome = await refundDebit(db, request);
  if (outcome.ok) return outcome.entry;
  const id = request.entryId;
  switch (outcome.reason) {
    case "not-found":
      throw new NotFoundError(`Ledger entry ${id} does not exist`);
    case "not-a-debit":
      throw new BadUserInputError(`Ledger entry ${id} is ${withArticle(outcome.kind)}, not a DEBIT: only debits can be refunded`, "entryId");
    case "pending":
      throw new ConflictError(`Debit ${id} is still being processed: retry once its operation has finished`, {
        retryAfterSeconds: STILL_RUNNING_RETRY_AFTER_SECONDS,
      });
    case "exceeds":
      throw new BadUserInputError(
        outcome.left === 0
          ? `Debit ${id} has nothing left to refund: what it held has all been released or refunded`
          : `Debit ${id} has only ${outcome.left} ${outcome.left === 1 ? "credit" : "credits"} left to refund`,
        "amount",
      );
    case "overflow":
      throw new BadUserInputError(`The refund would take the balance above the largest balance, ${MAX_BALANCE} ${HELD_COUNT}`, "amount");
  }
}

/** "a GRANT", "an ADJUSTMENT", "an EXPIRATION": the kind as a sentence says it. */
function withArticle(kind: string): string {
  return `${/^[AEIOU]/.test(kind) ? "an" : "a"} ${kind}`;
}
