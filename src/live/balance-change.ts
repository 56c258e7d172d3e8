/**
 * What the ledger trigger (drizzle/0004; its payload as 0012 builds it) says about each balance a
 * statement changed, as it arrives on the `credit_balance_changes` channel: a JSON array of compact
 * rows, one per balance.
 */
export const BALANCE_CHANNEL = "credit_balance_changes";

export const THRESHOLD_CROSSINGS = ["LOW_BALANCE", "BALANCE_DEPLETED", "BALANCE_RECOVERED"] as const;
export type ThresholdCrossingValue = (typeof THRESHOLD_CROSSINGS)[number];

/** The newest ledger entry of a change, as far as the notification tells it. */
export interface EntryRef {
  id: string;
  subscriptionId: string;
  creditType: string;
  kind: string;
  amount: number;
  balanceAfter: number;
  seq: number;
  createdAt: Date;
}

export interface BalanceChange {
  subscriptionId: string;
  creditType: string;
  balance: number;
  /** Ledger entries of this balance folded into the change. */
  entries: number;
  lastEntry: EntryRef;
  /** The last threshold crossing among those entries, if any. */
  crossing: ThresholdCrossingValue | null;
}

/** (subscription, type) as one map key. */
export function balanceKey(subscriptionId: string, creditType: string): string {
  return `${subscriptionId}\u0000${creditType}`;
}

type Row = [string, string, number, number, string, string, number, number | string, string, string | null];

function isCrossing(value: unknown): value is ThresholdCrossingValue {
  return typeof value === "string" && (THRESHOLD_CROSSINGS as readonly string[]).includes(value);
}

/** Parses one notification; rows that do not have the expected shape are skipped (and counted by the caller). */
export function parseBalanceNotification(payload: string): BalanceChange[] {
  const rows = JSON.parse(payload) as unknown;
  if (!Array.isArray(rows)) return [];
  const changes: BalanceChange[] = [];
  for (const row of rows as Row[]) {
    if (!Array.isArray(row) || row.length < 10 || typeof row[0] !== "string" || typeof row[1] !== "string") continue;
    const [subscriptionId, creditType, balance, entries, id, kind, amount, seq, createdAt, crossing] = row;
    changes.push({
      subscriptionId,
      creditType,
      balance: Number(balance),
      entries: Number(entries),
      lastEntry: {
        id,
        subscriptionId,
        creditType,
        kind,
        amount: Number(amount),
        balanceAfter: Number(balance),
        seq: Number(seq),
        createdAt: new Date(createdAt),
      },
      crossing: isCrossing(crossing) ? crossing : null,
    });
  }
  return changes;
}
