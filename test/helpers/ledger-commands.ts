/**
 * The production ledger statements (hold.ts, settle.ts through runLedgerCommand), called the way the
 * database tests need them: one hold, one post, one void. Nothing here is a twin of production SQL.
 */
import { randomUUID } from "node:crypto";
import type { DbOrTx } from "../../src/db/database.js";
import { runLedgerCommand } from "../../src/ledger/charge-ledger.js";
import type { HoldOutcome } from "../../src/ledger/hold.js";

export interface HoldOne {
  subscriptionId: string;
  creditType: string;
  amount: number;
  operation: string;
  estimated: number;
  actorId: string;
  adminOverride: boolean;
  requestId: string;
}

/** Holds one call's price (an operation of one field). */
export async function holdOne(db: DbOrTx, request: HoldOne): Promise<HoldOutcome> {
  const [outcome] = await runLedgerCommand(db, {
    kind: "hold",
    group: [{ ...request, entryId: randomUUID(), authorize: false, actorIsAdmin: false }],
  });
  return outcome;
}

/** Posts a hold (its cost stands, nothing released); true when it was still pending. */
export async function postHold(db: DbOrTx, subscriptionId: string, entryId: string): Promise<boolean> {
  const [outcome] = await runLedgerCommand(db, { kind: "settle", settlements: [{ kind: "post", subscriptionId, entryId, actorId: null, requestId: null }] });
  return outcome.settled;
}

/** Voids a hold (refunds it whole); the refunded credits and balance after, or undefined when it was not pending. */
export async function voidHold(
  db: DbOrTx,
  request: { subscriptionId: string; entryId: string; reason: string; actorId: string | null; requestId: string | null },
): Promise<{ amount: number; balanceAfter: number | undefined } | undefined> {
  const [outcome] = await runLedgerCommand(db, { kind: "settle", settlements: [{ kind: "void", ...request }] });
  return outcome.settled ? { amount: outcome.returned ?? 0, balanceAfter: outcome.balanceAfter } : undefined;
}
