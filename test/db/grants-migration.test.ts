/**
 * Migration 0005 on a database that already has balances (issue 17): every balance with credits
 * becomes one PAID grant holding it, the ledger audit (grant invariants included) is clean right
 * after, and a debit made before the migration can still be refunded.
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { connectDatabase, MIGRATIONS_FOLDER } from "../../src/db/connect.js";
import { queryRows } from "../../src/db/database.js";
import { auditLedgerAndGrants } from "../../src/grants/grant-audit.js";
import { refundDebit } from "../../src/ledger/refund-charge.js";

const BEFORE_GRANTS = ["0000_initial", "0001_ledger_guards", "0002_refunds_index"];

/** A copy of drizzle/ with only the migrations from before grants. */
function migrationsBeforeGrants(dir: string): string {
  const folder = join(dir, "drizzle");
  mkdirSync(join(folder, "meta"), { recursive: true });
  const journal = JSON.parse(readFileSync(join(MIGRATIONS_FOLDER, "meta", "_journal.json"), "utf8"));
  journal.entries = journal.entries.filter((e: { tag: string }) => BEFORE_GRANTS.includes(e.tag));
  writeFileSync(join(folder, "meta", "_journal.json"), JSON.stringify(journal));
  for (const tag of BEFORE_GRANTS) cpSync(join(MIGRATIONS_FOLDER, `${tag}.sql`), join(folder, `${tag}.sql`));
  return folder;
}

describe("migration 0005 on existing balances (PGlite)", () => {
  const dir = mkdtempSync(join(tmpdir(), "grants-migration-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("turns each balance into one PAID grant and keeps the audit clean", async () => {
    const { PGlite } = await import("@electric-sql/pglite");
    const { drizzle } = await import("drizzle-orm/pglite");
    const { migrate } = await import("drizzle-orm/pglite/migrator");
    const dataDir = join(dir, "data");
    const client = new PGlite(dataDir);
    const old = drizzle(client);
    await migrate(old, { migrationsFolder: migrationsBeforeGrants(dir) });
    // Yesterday's data, written as the statements before grants wrote it: a grant of 10 and a
    // settled debit of 4 on ai, nothing on leads.
    const [{ id: sub }] = (await old.execute<{ id: string }>(sql`insert into billing_subscriptions (owner_id, plan) values ('old', 'basic') returning id`)).rows;
    await old.execute(sql`insert into credit_balances (subscription_id, credit_type, balance) values (${sub}::uuid, 'ai', 6), (${sub}::uuid, 'leads', 0)`);
    await old.execute(sql`insert into credit_ledger (subscription_id, credit_type, kind, amount, balance_after, reason) values (${sub}::uuid, 'ai', 'GRANT', 10, 10, 'old grant')`);
    const [{ id: debit }] = (
      await old.execute<{ id: string }>(sql`insert into credit_ledger (subscription_id, credit_type, kind, amount, balance_after, operation) values (${sub}::uuid, 'ai', 'DEBIT', -4, 6, 'Mutation.old') returning id`)
    ).rows;
    await client.close();

    const database = await connectDatabase({ pgliteDir: dataDir });
    try {
      const grants = await queryRows<{ credit_type: string; category: string; amount: number; remaining: number; priority: number; expires_at: unknown }>(
        database.db,
        sql`select credit_type, category, amount, remaining, priority, expires_at from credit_grants where subscription_id = ${sub}::uuid`,
      );
      expect(grants).toEqual([{ credit_type: "ai", category: "PAID", amount: 6, remaining: 6, priority: 50, expires_at: null }]);
      expect(await auditLedgerAndGrants(database.db)).toMatchObject({ ok: true, mismatches: [] });
      // The old debit has no draws: its refund comes back as a new PAID grant.
      const refund = await refundDebit(database.db, { entryId: debit, amount: 3, actorId: "admin", reason: "old charge", requestId: "r" });
      expect(refund).toMatchObject({ ok: true, entry: { amount: 3, balanceAfter: 9 } });
      expect(await auditLedgerAndGrants(database.db)).toMatchObject({ ok: true, mismatches: [] });
    } finally {
      await database.close();
    }
  }, 60_000);
});
