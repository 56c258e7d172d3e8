/**
 * The ledger audit with the grants' invariants (DESIGN.md, "Data"): every balance equals the sum of
 * its ledger entries (src/ledger/audit.ts) and the sum of its grants' remaining credits, and every
 * grant's remaining equals its amount minus what entries drew from it, plus what refunds and releases
 * gave back, minus what expired (read from the entries' draws).
 *
 * The GraphQL report has one shape (LedgerMismatch: balance and ledger sum), so a balance whose
 * grants disagree is listed there too, and `ok` is false; the grant-level details are logged.
 */
import { sql } from "drizzle-orm";
import { queryRows, type DbOrTx } from "../db/database.js";
import { auditLedger, type AuditMismatch, type AuditReport } from "../ledger/audit.js";

export interface GrantBalanceMismatch {
  subscriptionId: string;
  creditType: string;
  balance: number;
  grantsRemaining: number;
}

export interface GrantHistoryMismatch {
  subscriptionId: string;
  creditType: string;
  grantId: string;
  remaining: number;
  /** amount − draws + returns − expired, from the ledger. */
  fromLedger: number;
}

export interface FullAuditReport extends AuditReport {
  grantMismatches: { balances: GrantBalanceMismatch[]; grants: GrantHistoryMismatch[] };
}

async function balancesAgainstGrants(db: DbOrTx): Promise<(GrantBalanceMismatch & { ledgerSum: number })[]> {
  const rows = await queryRows<{ subscription_id: string; credit_type: string; balance: string | number; grants: string | number; ledger_sum: string | number }>(
    db,
    sql`
      with grant_sums as (
        select subscription_id, credit_type, sum(remaining)::bigint as grants
          from credit_grants group by subscription_id, credit_type
      ), compared as (
        select coalesce(b.subscription_id, g.subscription_id) as subscription_id,
               coalesce(b.credit_type, g.credit_type) as credit_type,
               coalesce(b.balance, 0)::bigint as balance, coalesce(g.grants, 0)::bigint as grants
          from credit_balances b
          full join grant_sums g on g.subscription_id = b.subscription_id and g.credit_type = b.credit_type
      )
      select c.subscription_id, c.credit_type, c.balance, c.grants,
             (select coalesce(sum(l.amount), 0)::bigint from credit_ledger l
               where l.subscription_id = c.subscription_id and l.credit_type = c.credit_type) as ledger_sum
        from compared c
       where c.balance <> c.grants
       order by c.subscription_id, c.credit_type`,
  );
  return rows.map((r) => ({
    subscriptionId: r.subscription_id,
    creditType: r.credit_type,
    balance: Number(r.balance),
    grantsRemaining: Number(r.grants),
    ledgerSum: Number(r.ledger_sum),
  }));
}

async function grantsAgainstLedger(db: DbOrTx): Promise<GrantHistoryMismatch[]> {
  const rows = await queryRows<{ subscription_id: string; credit_type: string; id: string; remaining: number; from_ledger: string | number }>(
    db,
    sql`
      with moves as (
        select l.subscription_id, l.id as entry_id, (d ->> 'grantId')::uuid as grant_id,
               case when l.amount < 0 then -(d ->> 'amount')::bigint else (d ->> 'amount')::bigint end as signed
          from credit_ledger l
          cross join lateral jsonb_array_elements(l.draws) d
         where l.draws <> '[]'::jsonb
      )
      select g.subscription_id, g.credit_type, g.id, g.remaining,
             g.amount + coalesce(sum(m.signed) filter (where m.entry_id is distinct from g.entry_id), 0) as from_ledger
        from credit_grants g
        left join moves m on m.subscription_id = g.subscription_id and m.grant_id = g.id
       group by g.subscription_id, g.credit_type, g.id, g.remaining, g.amount, g.entry_id
      having g.remaining <> g.amount + coalesce(sum(m.signed) filter (where m.entry_id is distinct from g.entry_id), 0)
       order by g.subscription_id, g.id`,
  );
  return rows.map((r) => ({
    subscriptionId: r.subscription_id,
    creditType: r.credit_type,
    grantId: r.id,
    remaining: Number(r.remaining),
    fromLedger: Number(r.from_ledger),
  }));
}

/** Balance and ledger sum of one balance, to list a balance whose grant disagrees with the ledger. */
async function balanceFigures(db: DbOrTx, subscriptionId: string, creditType: string): Promise<{ balance: number; ledgerSum: number }> {
  const [row] = await queryRows<{ balance: string | number | null; ledger_sum: string | number }>(
    db,
    sql`select (select balance from credit_balances where subscription_id = ${subscriptionId}::uuid and credit_type = ${creditType}) as balance,
               (select coalesce(sum(amount), 0)::bigint from credit_ledger where subscription_id = ${subscriptionId}::uuid and credit_type = ${creditType}) as ledger_sum`,
  );
  return { balance: Number(row.balance ?? 0), ledgerSum: Number(row.ledger_sum) };
}

export async function auditLedgerAndGrants(db: DbOrTx): Promise<FullAuditReport> {
  // One after another: ledgerAudit runs them on one transaction's connection (a report with a
  // statement timeout, src/db/report-gate.ts), which takes one query at a time.
  const ledger = await auditLedger(db);
  const balances = await balancesAgainstGrants(db);
  const grants = await grantsAgainstLedger(db);
  const mismatches: AuditMismatch[] = [...ledger.mismatches];
  const listed = new Set(mismatches.map((m) => `${m.subscriptionId}/${m.creditType}`));
  for (const b of balances) {
    if (listed.has(`${b.subscriptionId}/${b.creditType}`)) continue;
    listed.add(`${b.subscriptionId}/${b.creditType}`);
    mismatches.push({ subscriptionId: b.subscriptionId, creditType: b.creditType, balance: b.balance, ledgerSum: b.ledgerSum });
  }
  for (const g of grants) {
    const key = `${g.subscriptionId}/${g.creditType}`;
    if (listed.has(key)) continue;
    listed.add(key);
    mismatches.push({ subscriptionId: g.subscriptionId, creditType: g.creditType, ...(await balanceFigures(db, g.subscriptionId, g.creditType)) });
  }
  return {
    checkedBalances: ledger.checkedBalances,
    mismatches,
    ok: ledger.ok && balances.length === 0 && grants.length === 0,
    grantMismatches: { balances: balances.map(({ ledgerSum: _ignored, ...rest }) => rest), grants },
  };
}
