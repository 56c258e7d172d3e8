/**
 * The ledger as the charge path speaks to it: commands with one entry point (DESIGN.md, convention
 * 9). A hold takes an operation's credits before its fields run; a settlement ends holds (post,
 * post with a release, or void); grants, adjustments and an admin's refunds change balances outside
 * the charge path. Each command is one SQL shape, kept in one place (hold.ts, settle.ts,
 * change-balance.ts, refund-charge.ts), and the tests run those same statements.
 */
import type { DbOrTx } from "../db/database.js";
import { changeBalance, type BalanceChange } from "./change-balance.js";
import type { LedgerEntryRecord } from "./entry.js";
import { holdGroups, type HoldGroup, type HoldOutcome } from "./hold.js";
import { refundDebit, type RefundChargeOutcome, type RefundChargeRequest } from "./refund-charge.js";
import { settleHolds, type Settlement, type SettlementOutcome } from "./settle.js";

export type LedgerCommand =
  /** Holds one operation's credits: all of the group, or none. */
  | { kind: "hold"; group: HoldGroup }
  /** Ends holds: post (the cost stands), release (the cost was less; the rest comes back) or void (refunded whole). */
  | { kind: "settle"; settlements: readonly Settlement[] }
  | { kind: "grant"; change: Omit<BalanceChange, "kind"> }
  | { kind: "adjust"; change: Omit<BalanceChange, "kind"> }
  /** An admin's refund of a settled debit, whole or in part. */
  | { kind: "refund"; request: RefundChargeRequest };

export interface LedgerCommandResult {
  hold: HoldOutcome[];
  settle: SettlementOutcome[];
  grant: LedgerEntryRecord;
  adjust: LedgerEntryRecord;
  refund: RefundChargeOutcome;
}

/** Runs one command as one statement (no coalescing): the entry point of everything that is not the hot path. */
export async function runLedgerCommand<C extends LedgerCommand>(db: DbOrTx, command: C): Promise<LedgerCommandResult[C["kind"]]> {
  type Result = LedgerCommandResult[C["kind"]];
  switch (command.kind) {
    case "hold":
      return (await holdGroups(db, [command.group]))[0] as Result;
    case "settle":
      return (await settleHolds(db, command.settlements)) as Result;
    case "grant":
      return (await changeBalance(db, { ...command.change, kind: "GRANT" })) as Result;
    case "adjust":
      return (await changeBalance(db, { ...command.change, kind: "ADJUSTMENT" })) as Result;
    case "refund":
      return (await refundDebit(db, command.request)) as Result;
  }
  throw new Error(`unknown ledger command ${(command as { kind: string }).kind}`);
}

export interface SettleOptions {
  /**
   * Called once, with one outcome per settlement in order, if a settle that rejected is written
   * later in the background (`settled: false` for a hold the recovery pass refunded first). Nobody
   * awaits the settle any more by then: this is how the charge path still logs and counts it.
   */
  whenSettledLate?: (outcomes: SettlementOutcome[]) => void;
}

/**
 * The commands the charge path runs: on every metered call a hold and a settlement, coalesced across
 * requests in production; rarely, a refund of a settled call whose response never reached the client.
 */
export interface ChargeLedger {
  /** Holds one operation's group of holds; one outcome per hold, in order. */
  hold(group: HoldGroup): Promise<HoldOutcome[]>;
  /**
   * Settles one operation's holds; one outcome per settlement, in order. When it rejects (the
   * database away for longer than the retries), the holds stay pending and the ledger may write
   * them later, in the background: `whenSettledLate` then hears their outcomes.
   */
  settle(settlements: readonly Settlement[], options?: SettleOptions): Promise<SettlementOutcome[]>;
  /** Refunds what a settled debit has left (one statement, not coalesced: it is rare). */
  refund(request: RefundChargeRequest): Promise<RefundChargeOutcome>;
}

