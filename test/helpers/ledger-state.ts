/** Reads a subscription's balances and ledger size straight from the database, to prove a refusal moved nothing. */
import { sql } from "drizzle-orm";
import { queryRows, type DatabaseHandle } from "../../src/db/database.js";

export interface LedgerState {
  balances: Record<string, number>;
  entries: number;
}

export async function ledgerState(database: DatabaseHandle, subscriptionId: string): Promise<LedgerState> {
  const balances = await queryRows<{ credit_type: string; balance: number }>(
    database.db,
    sql`select credit_type, balance from credit_balances where subscription_id = ${subscriptionId}::uuid order by credit_type`,
  );
  const [count] = await queryRows<{ n: number | string }>(
    database.db,
    sql`select count(*) as n from credit_ledger where subscription_id = ${subscriptionId}::uuid`,
  );
  return { balances: Object.fromEntries(balances.map((b) => [b.credit_type, Number(b.balance)])), entries: Number(count.n) };
}

export interface LedgerRowView {
  id: string;
  kind: string;
  amount: number;
  balance_after: number;
  refund_of: string | null;
  operation: string | null;
  admin_override: boolean;
  estimated: number | null;
  actor_id: string | null;
  request_id: string | null;
}

export async function ledgerEntries(database: DatabaseHandle, subscriptionId: string): Promise<LedgerRowView[]> {
  const rows = await queryRows<LedgerRowView>(
    database.db,
    sql`select id, kind, amount, balance_after, refund_of, operation, admin_override, estimated, actor_id, request_id
          from credit_ledger where subscription_id = ${subscriptionId}::uuid order by seq`,
  );
  return rows.map((r) => ({ ...r, amount: Number(r.amount), balance_after: Number(r.balance_after) }));
}
