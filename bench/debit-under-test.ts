/** The debit statement the raw-debit scenario replays: the one the server's charge ledger runs for a single debit. */
import type { DbOrTx } from "../src/db/database.js";
import { debitCredits, type DebitRequest } from "../src/ledger/debit.js";

export const BENCH_DEBIT_STATEMENT: { description: string; debit: (db: DbOrTx, request: DebitRequest) => Promise<unknown> } = {
  description: "the single-statement debit of src/ledger/debit.ts on distinct rows",
  debit: debitCredits,
};
