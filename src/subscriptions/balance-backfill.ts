/**
 * A subscription has a balance of every credit type the server knows (DESIGN.md, "Data"), so a type
 * added after it was opened reads as 0 (402 when spent), never as a missing balance (404). New
 * subscriptions get every row when they are opened; this fills in the rows of older ones at start.
 * Idempotent (rows that exist are left alone) and one statement: an anti-join on the balances'
 * primary key, which finds nothing to insert on every start but the first after a type is added.
 */
import { sql } from "drizzle-orm";
import type { DbOrTx } from "../db/database.js";
import { queryRows } from "../db/database.js";

/** Inserts a zero balance for each (subscription, type) that has none; returns how many were added. */
export async function backfillBalances(db: DbOrTx, creditTypes: readonly string[]): Promise<number> {
  if (creditTypes.length === 0) return 0;
  const types = sql.join(creditTypes.map((t) => sql`(${t})`), sql`, `);
  const rows = await queryRows<{ subscription_id: string }>(
    db,
    sql`insert into credit_balances (subscription_id, credit_type, balance)
        select s.id, t.type, 0
          from billing_subscriptions s
         cross join (values ${types}) as t(type)
         where not exists (select 1 from credit_balances b where b.subscription_id = s.id and b.credit_type = t.type)
        on conflict do nothing
        returning subscription_id`,
  );
  return rows.length;
}
