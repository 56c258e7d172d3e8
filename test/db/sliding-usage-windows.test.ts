/**
 * The USAGE_SPIKE figures kept by sliding-usage-windows.ts: moved forward check by check, they must
 * equal what reading both windows afresh gives, whatever the steps between checks, on both backends;
 * and a check after the first must read only the edges that moved (an entry stamped deep in the past
 * after the first check is not seen until the hourly full read).
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { fundedSubscription } from "../helpers/test-app.js";
import { queryRows, type Database } from "../../src/db/database.js";
import { FULL_READ_EVERY_MS, SETTLED_AFTER_MS, SlidingUsageWindows } from "../../src/observability/alerts/sliding-usage-windows.js";

const WINDOW_MS = 60_000;
const BASELINE_MS = 10 * 60_000;
const settings = { windowMs: WINDOW_MS, baselineMs: BASELINE_MS };

async function writeEntry(db: Database, subscriptionId: string, kind: "DEBIT" | "GRANT", credits: number, at: number): Promise<void> {
  await db.execute(sql`
    insert into credit_ledger (subscription_id, credit_type, kind, amount, balance_after, operation, created_at)
    values (${subscriptionId}::uuid, 'leads', ${kind}, ${kind === "DEBIT" ? -credits : credits}::int, 1000000, 'Mutation.searchLeads',
            ${new Date(at).toISOString()}::timestamptz)`);
}

/** Both windows read afresh: what the sliding sums must equal. */
async function readAfresh(db: Database, subscriptionId: string, nowMs: number): Promise<{ recent: number; baseline: number }> {
  const at = (ms: number) => new Date(ms).toISOString();
  const [row] = await queryRows<{ recent: string | number; baseline: string | number }>(
    db,
    sql`select coalesce(sum(-amount) filter (where created_at > ${at(nowMs - WINDOW_MS)}::timestamptz), 0) as recent,
               coalesce(sum(-amount) filter (where created_at <= ${at(nowMs - WINDOW_MS)}::timestamptz
                                               and created_at > ${at(nowMs - WINDOW_MS - BASELINE_MS)}::timestamptz), 0) as baseline
          from credit_ledger where subscription_id = ${subscriptionId}::uuid and kind = 'DEBIT'`,
  );
  return { recent: Number(row.recent), baseline: Number(row.baseline) };
}

/** A small deterministic generator, so a failure replays. */
function generator(seed: number): (below: number) => number {
  let state = seed >>> 0;
  return (below) => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state % below;
  };
}

describe.each(BACKENDS)("sliding usage windows on %s", (backend) => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase(backend);
  });

  afterAll(async () => {
    await database?.close();
  });

  it("equal both windows read afresh at every check, as time and debits move on", async () => {
    const db = database.db;
    const subscriptionId = await fundedSubscription(database, "sliding-owner", { leads: 10 });
    const random = generator(20261129);
    const start = Date.now() - 3_600_000;
    // History before the first check: debits across both windows and before them, and a grant (not usage).
    for (let i = 0; i < 60; i++) {
      await writeEntry(db, subscriptionId, "DEBIT", 1 + random(9), start - random(WINDOW_MS + BASELINE_MS + 120_000));
    }
    await writeEntry(db, subscriptionId, "GRANT", 500, start - 1_000);

    const windows = new SlidingUsageWindows(db, settings);
    let now = start;
    let checks = 0;
    for (let step = 0; step < 60; step++) {
      // Steps of nothing up to a whole window (so debits cross each boundary between two checks) …
      now += [0, 1, 250, 4_000, 15_000, WINDOW_MS][random(6)];
      // … with new debits as the charge path writes them: stamped within the settling time of now,
      // some a little ahead of this instance's clock.
      for (let n = random(4); n > 0; n--) {
        await writeEntry(db, subscriptionId, "DEBIT", 1 + random(9), now - random(SETTLED_AFTER_MS) + random(2_000));
      }
      const got = await windows.read(subscriptionId, now);
      const expected = await readAfresh(db, subscriptionId, now);
      expect({ step, recent: got.recentCredits, baseline: got.baselineCredits }).toEqual({ step, ...expected });
      expect(got.baselineAveragePerWindow).toBeCloseTo(expected.baseline / (BASELINE_MS / WINDOW_MS), 9);
      checks++;
    }
    expect(checks).toBe(60);

    // The clock stepping back reads both windows again, and is still right.
    now -= 30_000;
    const back = await windows.read(subscriptionId, now);
    expect({ recent: back.recentCredits, baseline: back.baselineCredits }).toEqual(await readAfresh(db, subscriptionId, now));
  });

  it("reads only what moved after the first check, and everything again within the hour", async () => {
    const db = database.db;
    const subscriptionId = await fundedSubscription(database, "sliding-edges", { leads: 10 });
    const now = Date.now() - 2 * 3_600_000;
    await writeEntry(db, subscriptionId, "DEBIT", 7, now - WINDOW_MS - 120_000);
    const windows = new SlidingUsageWindows(db, settings);
    expect((await windows.read(subscriptionId, now)).baselineCredits).toBe(7);

    // Written after that check, stamped deep in the baseline (an import, say): no edge moves over it.
    await writeEntry(db, subscriptionId, "DEBIT", 5, now - WINDOW_MS - 180_000);
    expect((await windows.read(subscriptionId, now + 1_000)).baselineCredits).toBe(7);
    expect((await readAfresh(db, subscriptionId, now + 1_000)).baseline).toBe(12);

    // The hourly full read takes it in (the first entries have left the baseline by then; a fresh one is in it).
    const later = now + FULL_READ_EVERY_MS;
    await writeEntry(db, subscriptionId, "DEBIT", 3, later - WINDOW_MS - 60_000);
    const full = await windows.read(subscriptionId, later);
    expect({ recent: full.recentCredits, baseline: full.baselineCredits }).toEqual(await readAfresh(db, subscriptionId, later));
    expect(full.baselineCredits).toBe(3);
  });
});
