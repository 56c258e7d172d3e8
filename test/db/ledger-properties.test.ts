/**
 * Property-based: random sequences of grants (with random categories, priorities and expiries, some
 * expiring while the run goes on), holds (groups of one operation, all or nothing) settled with
 * releases or voided, refunds and adjustments, run concurrently on real PostgreSQL through the
 * production ledger code (coalescing holds and settlements, admin refunds, balance changes, the
 * expiry pass). Whatever interleaving the database picks, every operation either succeeds or is
 * refused for a legitimate reason, the balance equals the model replayed from the successful
 * operations and the expirations, it is never negative, no debit is refunded beyond itself, no debit
 * draws from a grant expired at its time, every entry's draws add up to its amount, and ledgerAudit
 * (grants included) is clean.
 */
import { randomUUID } from "node:crypto";
import fc from "fast-check";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../../src/db/database.js";
import { sqlState } from "../../src/db/errors.js";
import { auditLedgerAndGrants } from "../../src/grants/grant-audit.js";
import { grantWithTerms } from "../../src/grants/grant-credits.js";
import { expireDueGrants } from "../../src/grants/expiry.js";
import { changeBalance } from "../../src/ledger/change-balance.js";
import { createCoalescingChargeLedger, type CoalescingChargeLedger } from "../../src/ledger/coalescing-charge-ledger.js";
import { refundDebit } from "../../src/ledger/refund-charge.js";
import { createPostgresDatabase, type TestDatabase } from "../helpers/databases.js";
import { postgresAvailable } from "../helpers/services.js";
import { fundedSubscription } from "../helpers/test-app.js";

const TYPES = ["ai", "leads"] as const;
type CreditType = (typeof TYPES)[number];

type Operation =
  | { op: "grant"; type: CreditType; amount: number }
  /** One operation's holds of one type (all or nothing), each then settled: released in part, or voided. */
  | { op: "debit"; type: CreditType; holds: { amount: number; release: number; void: boolean }[] }
  | { op: "adjust"; type: CreditType; delta: number }
  | {
      op: "grantTerms";
      type: CreditType;
      amount: number;
      category: "PAID" | "PROMOTIONAL" | "PLAN";
      priority: number;
      /** null: never expires; otherwise expires this many ms after it is made (often during the run). */
      expiresInMs: number | null;
    };
type Refund = { debitIndex: number; amount: number | undefined };

const creditType = fc.constantFrom(...TYPES);
/** A hold of min–max credits, a release of up to all of it, and sometimes a void (system error) instead. */
const hold = (min: number, max: number) =>
  fc.integer({ min, max }).chain((amount) =>
    fc.record({ amount: fc.constant(amount), release: fc.integer({ min: 0, max: amount }), void: fc.boolean().map((b) => b && amount % 2 === 1) }),
  );
const operation: fc.Arbitrary<Operation> = fc.oneof(
  fc.record({ op: fc.constant("grant" as const), type: creditType, amount: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ op: fc.constant("debit" as const), type: creditType, holds: fc.array(hold(0, 25), { minLength: 1, maxLength: 3 }) }),
  fc.record({ op: fc.constant("debit" as const), type: creditType, holds: fc.array(hold(1, 3), { minLength: 1, maxLength: 3 }) }),
  fc.record({
    op: fc.constant("adjust" as const),
    type: creditType,
    delta: fc.integer({ min: -30, max: 30 }).filter((d) => d !== 0),
  }),
);
const withTerms: fc.Arbitrary<Operation> = fc.record({
  op: fc.constant("grantTerms" as const),
  type: creditType,
  amount: fc.integer({ min: 1, max: 30 }),
  category: fc.constantFrom("PAID" as const, "PROMOTIONAL" as const, "PLAN" as const),
  priority: fc.integer({ min: 0, max: 100 }),
  expiresInMs: fc.option(fc.integer({ min: 5, max: 300 }), { nil: null }),
});
const anyOperation: fc.Arbitrary<Operation> = fc.oneof(operation, withTerms);
const refund: fc.Arbitrary<Refund> = fc.record({
  debitIndex: fc.nat({ max: 1_000 }),
  amount: fc.option(fc.integer({ min: 1, max: 10 }), { nil: undefined }),
});

describe.skipIf(!postgresAvailable)("ledger properties under concurrency on PostgreSQL", () => {
  let database: TestDatabase;
  let ledger: CoalescingChargeLedger;

  beforeAll(async () => {
    database = await createPostgresDatabase(20);
    ledger = createCoalescingChargeLedger(database.db, { maxBatch: 100, maxInFlight: 2 });
  });
  afterAll(() => database?.dispose());

  /** Runs one operation; returns the signed change it made, or 0 when it was refused for a legitimate reason. */
  async function run(subscriptionId: string, operation: Operation, debits: { entryId: string; type: CreditType; amount: number }[]): Promise<number> {
    if (operation.op === "debit") {
      const group = operation.holds.map((h) => ({
        subscriptionId,
        creditType: operation.type,
        amount: h.amount,
        entryId: randomUUID(),
        operation: "Mutation.property",
        estimated: h.amount,
        actorId: "property",
        adminOverride: h.amount === 0,
        requestId: "property",
        authorize: false,
        actorIsAdmin: false,
      }));
      const outcomes = await ledger.hold(group);
      // All or nothing: the group is granted whole or refused whole.
      expect(new Set(outcomes.map((o) => o.ok)).size).toBe(1);
      if (!outcomes[0].ok) {
        expect(outcomes.some((o) => !o.ok && o.reason === "insufficient")).toBe(true);
        return 0;
      }
      const settled = await ledger.settle(
        operation.holds.map((h, i) =>
          h.void
            ? { kind: "void" as const, subscriptionId, entryId: group[i].entryId, reason: "property void", actorId: null, requestId: "property" }
            : { kind: "release" as const, subscriptionId, entryId: group[i].entryId, amount: h.release, actorId: null, requestId: "property" },
        ),
      );
      expect(settled.every((o) => o.settled)).toBe(true);
      let change = 0;
      operation.holds.forEach((h, i) => {
        const cost = h.void ? 0 : h.amount - h.release;
        change -= cost;
        if (!h.void) debits.push({ entryId: group[i].entryId, type: operation.type, amount: cost });
      });
      return change;
    }
    if (operation.op === "grantTerms") {
      const change = { subscriptionId, creditType: operation.type, kind: "GRANT" as const, delta: operation.amount, actorId: "property-admin", reason: "property test", requestId: "property" };
      const expiresAt = operation.expiresInMs === null ? null : new Date(Date.now() + operation.expiresInMs);
      try {
        await grantWithTerms(database.db, change, { category: operation.category, priority: operation.priority, expiresAt });
        return operation.amount;
      } catch (err) {
        // The only legitimate refusal: a few milliseconds' expiry already past on the database's
        // clock when the statement ran (BAD_USER_INPUT, nothing written).
        expect(operation.expiresInMs).not.toBeNull();
        expect((err as { extensions?: Record<string, unknown> }).extensions).toMatchObject({ code: "BAD_USER_INPUT", field: "expiresAt" });
        return 0;
      }
    }
    const delta = operation.op === "grant" ? operation.amount : operation.delta;
    try {
      await changeBalance(database.db, {
        subscriptionId,
        creditType: operation.type,
        kind: operation.op === "grant" ? "GRANT" : "ADJUSTMENT",
        delta,
        actorId: "property-admin",
        reason: "property test",
        requestId: "property",
      });
      return delta;
    } catch (err) {
      // The only legitimate refusal: an adjustment that would take the balance below zero.
      expect(operation.op).toBe("adjust");
      expect(sqlState(err)).toBe("23514");
      return 0;
    }
  }

  it("balances equal the replayed model, never go negative, and the audit is clean", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(anyOperation, { minLength: 5, maxLength: 40 }),
        fc.array(refund, { maxLength: 20 }),
        fc.array(anyOperation, { maxLength: 20 }),
        async (first, refunds, second) => {
          const subscriptionId = await fundedSubscription(database, "property-owner", { ai: 20, leads: 20 });
          const model: Record<CreditType, number> = { ai: 20, leads: 20 };
          const debits: { entryId: string; type: CreditType; amount: number }[] = [];
          const apply = (type: CreditType) => (change: number) => {
            model[type] += change;
          };

          // Phase 1: grants, debits and adjustments all at once.
          await Promise.all(first.map((o) => run(subscriptionId, o, debits).then(apply(o.type))));

          // Phase 2: refunds of phase-1 debits (often several of one debit, racing) beside more
          // operations and the expiry pass.
          const refunded = new Map<string, number>();
          await Promise.all([
            expireDueGrants(database.db),
            ...refunds
              .filter(() => debits.length > 0)
              .map(async (r) => {
                const debit = debits[r.debitIndex % debits.length];
                const outcome = await refundDebit(database.db, {
                  entryId: debit.entryId,
                  amount: r.amount,
                  actorId: "property-admin",
                  reason: "property refund",
                  requestId: "property",
                });
                if (outcome.ok) {
                  model[debit.type] += outcome.entry.amount;
                  refunded.set(debit.entryId, (refunded.get(debit.entryId) ?? 0) + outcome.entry.amount);
                } else {
                  expect(outcome.reason).toBe("exceeds");
                }
              }),
            ...second.map((o) => run(subscriptionId, o, debits).then(apply(o.type))),
          ]);

          await expireDueGrants(database.db);
          // Expirations (by the pass, or at once for credits refunded to an expired grant) leave the model.
          const expired = await queryRows<{ credit_type: CreditType; total: string | number }>(
            database.db,
            sql`select credit_type, sum(amount) as total from credit_ledger
                 where subscription_id = ${subscriptionId}::uuid and kind = 'EXPIRATION' group by credit_type`,
          );
          for (const row of expired) model[row.credit_type] += Number(row.total);
          const [violations] = await queryRows<{ expired_draws: string | number; unbalanced: string | number }>(
            database.db,
            sql`select
                  (select count(*) from credit_ledger l
                     cross join lateral jsonb_array_elements(l.draws) d
                     join credit_grants g on g.subscription_id = l.subscription_id and g.id = (d ->> 'grantId')::uuid
                    where l.subscription_id = ${subscriptionId}::uuid and l.kind = 'DEBIT' and g.expires_at <= l.created_at) as expired_draws,
                  (select count(*) from credit_ledger l
                    where l.subscription_id = ${subscriptionId}::uuid and l.amount <> 0
                      and (select coalesce(sum((d ->> 'amount')::int), 0) from jsonb_array_elements(l.draws) d) <> abs(l.amount)) as unbalanced`,
          );
          expect({ expiredDraws: Number(violations.expired_draws), unbalanced: Number(violations.unbalanced) }).toEqual({ expiredDraws: 0, unbalanced: 0 });
          for (const debit of debits) expect(refunded.get(debit.entryId) ?? 0).toBeLessThanOrEqual(debit.amount);
          const rows = await queryRows<{ credit_type: CreditType; balance: number }>(
            database.db,
            sql`select credit_type, balance from credit_balances where subscription_id = ${subscriptionId}::uuid and credit_type in ('ai', 'leads')`,
          );
          const balances = Object.fromEntries(rows.map((r) => [r.credit_type, Number(r.balance)]));
          expect(balances).toEqual(model);
          expect(balances.ai).toBeGreaterThanOrEqual(0);
          expect(balances.leads).toBeGreaterThanOrEqual(0);
          expect(await auditLedgerAndGrants(database.db)).toMatchObject({ ok: true, mismatches: [] });
        },
      ),
      { numRuns: 25 },
    );
  });
});
