/** The statement the raw-debit scenario replays: the hold the server's charge ledger runs for an operation of one field. */
import type { DbOrTx } from "../src/db/database.js";
import { runLedgerCommand } from "../src/ledger/charge-ledger.js";
import type { HoldRequest } from "../src/ledger/hold.js";

export type BenchHoldRequest = Omit<HoldRequest, "authorize" | "actorIsAdmin">;

export const BENCH_DEBIT_STATEMENT: { description: string; debit: (db: DbOrTx, request: BenchHoldRequest) => Promise<unknown> } = {
  description: "the hold statement of src/ledger/hold.ts (one operation of one field, authorization folded in) on distinct rows",
  // As the server holds an ordinary call: the subscription check folded into the statement.
  debit: (db, request) => runLedgerCommand(db, { kind: "hold", group: [{ ...request, authorize: true, actorIsAdmin: false }] }),
};
