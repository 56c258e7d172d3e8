/**
 * Usage over a window counts every release and refund of the window's debits, whenever it was
 * written, and none of the debits outside it: src/ledger/usage.ts reads only returns written at or
 * after `from` and belonging to a debit of the window, so its cost follows the window rather than
 * the subscription's history. These are the cases those conditions must not change: a return after
 * `to`, a return at the very instant of its debit (written in one transaction), a debit at `from`
 * (inclusive) and at `to` (exclusive), a return inside the window of a debit before it, and returns
 * of another subscription's debits. Back-dated rows are written straight into the ledger (usage
 * reads only the ledger; the draws are set so the grant triggers leave the rows alone).
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../../src/db/database.js";
import { usageFigures, type UsageFigures, type UsageRequest } from "../../src/ledger/usage.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { fundedSubscription } from "../helpers/test-app.js";

const FROM = new Date("2024-03-10T00:00:00Z");
const TO = new Date("2024-03-11T00:00:00Z");
const OPERATION = "Mutation.runAiTask";

/** The figures of one bucket, as expected by hand. */
function figures(key: string, calls: number, estimated: number, released: number, refunded: number): UsageFigures {
  const credits = estimated - released - refunded;
  return { key, subKey: null, calls, estimated, credits, refunded, released, averageCredits: calls === 0 ? 0 : credits / calls };
}

describe.each(BACKENDS)("usage windows count their debits' returns on %s", (backend) => {
  let database: TestDatabase;
  let main: string;
  let other: string;

  /** A back-dated ledger row; returns name their debit. */
  async function entry(subscriptionId: string, kind: "DEBIT" | "RELEASE" | "REFUND", amount: number, at: string, refundOf?: string): Promise<string> {
    const [row] = await queryRows<{ id: string }>(
      database.db,
      sql`insert into credit_ledger (subscription_id, credit_type, kind, amount, balance_after, operation, estimated, refund_of, draws, created_at)
          values (${subscriptionId}::uuid, 'ai', ${kind}, ${amount}::int, 100, ${OPERATION}, ${kind === "DEBIT" ? -amount : null}::int,
                  ${refundOf ?? null}::uuid, '[{"grantId":"00000000-0000-0000-0000-000000000000","amount":1}]'::jsonb, ${at}::timestamptz)
          returning id`,
    );
    return row.id;
  }

  beforeAll(async () => {
    database = await createTestDatabase(backend);
    main = await fundedSubscription(database, "window-owner", {});
    other = await fundedSubscription(database, "other-owner", {});

    // Before the window: its release falls inside the window and must not count there.
    const before = await entry(main, "DEBIT", -7, "2024-03-09T23:00:00Z");
    await entry(main, "RELEASE", 2, "2024-03-10T01:00:00Z", before);
    await entry(main, "REFUND", 5, "2024-03-12T00:00:00Z", before);
    // At `from` (included), released at that very instant, as when written in the debit's own transaction.
    const atFrom = await entry(main, "DEBIT", -10, "2024-03-10T00:00:00Z");
    await entry(main, "RELEASE", 3, "2024-03-10T00:00:00Z", atFrom);
    // Inside: released inside the window, refunded two weeks after `to`.
    const inside = await entry(main, "DEBIT", -20, "2024-03-10T06:00:00Z");
    await entry(main, "RELEASE", 4, "2024-03-10T06:00:01Z", inside);
    await entry(main, "REFUND", 6, "2024-03-25T00:00:00Z", inside);
    // The window's last millisecond, refunded whole weeks later.
    const last = await entry(main, "DEBIT", -5, "2024-03-10T23:59:59.999Z");
    await entry(main, "REFUND", 5, "2024-04-30T00:00:00Z", last);
    // At `to` (excluded).
    const atTo = await entry(main, "DEBIT", -9, "2024-03-11T00:00:00Z");
    await entry(main, "RELEASE", 1, "2024-03-11T00:00:01Z", atTo);
    // Another subscription's debit inside the window, with its release.
    const others = await entry(other, "DEBIT", -3, "2024-03-10T12:00:00Z");
    await entry(other, "RELEASE", 1, "2024-03-10T12:00:01Z", others);
  });
  afterAll(async () => {
    await database?.dispose();
  });

  const usage = (window: Pick<UsageRequest, "from" | "to">) => usageFigures(database.db, { grouping: "OPERATION", subscriptionId: main, ...window });

  it("a window counts its debits' returns written after `to`, and not the returns of debits before `from`", async () => {
    expect(await usage({ from: FROM, to: TO })).toEqual([figures(OPERATION, 3, 35, 7, 11)]);
  });

  it("a window from one hour in leaves out the debit at `from` and its release", async () => {
    expect(await usage({ from: new Date(FROM.getTime() + 3_600_000), to: TO })).toEqual([figures(OPERATION, 2, 25, 4, 11)]);
  });

  it("only `from`, only `to`, and no window at all", async () => {
    expect(await usage({ from: FROM })).toEqual([figures(OPERATION, 4, 44, 8, 11)]);
    expect(await usage({ to: TO })).toEqual([figures(OPERATION, 4, 42, 9, 16)]);
    expect(await usage({})).toEqual([figures(OPERATION, 5, 51, 10, 16)]);
  });

  it("across subscriptions (creditStats), each debit meets its own returns", async () => {
    const stats = await usageFigures(database.db, { grouping: "SUBSCRIPTION", from: FROM, to: TO });
    expect(stats).toEqual([figures(main, 3, 35, 7, 11), figures(other, 1, 3, 1, 0)].sort((a, b) => (a.key < b.key ? -1 : 1)));
  });
});
