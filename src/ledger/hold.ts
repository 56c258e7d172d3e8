/**
 * The hold: the one SQL statement that takes credits before work starts (DESIGN.md, "The charge
 * path", step 6). Every hold of the server, one field's or a whole operation's, coalesced with other
 * requests' or alone, is this statement; the bench's raw scenario drives it too.
 *
 * A statement holds a batch of *groups*. A group is one operation's upfront-priced metered fields
 * (or one field reached inside a list): all of its holds are granted together or none is. The
 * balance rows the batch touches are locked once (in key order, so two statements never deadlock,
 * on one instance or many) and the groups are walked in arrival order: a group is granted when every
 * subscription it spends lets its caller spend and every balance covers the group's total of it,
 * what is left after earlier groups of the batch counted, exactly what running them one by one
 * would do. Each balance is then written once, with one DEBIT ledger entry and one pending mark per
 * granted hold. One statement means one round trip and one commit, and the row locks are held only
 * for it (DESIGN.md, "Performance").
 *
 * The statement calls credit_hold(), a PL/pgSQL function (drizzle/0010_charge_functions.sql): a
 * statement sent as text is planned on every run, since named prepared statements do not survive a
 * transaction-mode pooler, while the plans of a function's statements are cached per session.
 *
 * Authorization can be folded in: a hold with `authorize` is granted only when its subscription
 * exists, is ACTIVE and its actor owns it or is an admin; otherwise its outcome carries what the
 * statement saw, so the caller raises the same errors in the same order as the charge path does.
 */
import { sql } from "drizzle-orm";
import { queryRows, type DbOrTx } from "../db/database.js";

/**
 * SQLSTATE of a hold statement refused because the lease it was sent under has expired
 * (credit_lease_guard, drizzle/0015_lease_bound_claims.sql): nothing was held; the server takes a new
 * lease and sends it again.
 */
export const LEASE_EXPIRED_SQLSTATE = "CL001";

export interface HoldRequest {
  subscriptionId: string;
  creditType: string;
  /** Credits to hold; 0 is allowed (an admin override) and still recorded. */
  amount: number;
  /** Chosen by the caller (a random UUID) before the statement runs: the DEBIT entry's id. */
  entryId: string;
  operation: string;
  estimated: number;
  actorId: string;
  adminOverride: boolean;
  requestId: string;
  /** Check, in the statement, that the subscription exists, is ACTIVE and the actor may spend it. */
  authorize: boolean;
  /** Only read when `authorize`: an admin may spend any subscription's credits. */
  actorIsAdmin: boolean;
  /**
   * The instance lease the call's Idempotency-Key was claimed under: held under that lease or not at
   * all (src/ledger/coalescing-charge-ledger.ts, LeaseChangedError). Undefined: any lease.
   */
  requiredLease?: string;
}

/**
 * A call whose Idempotency-Key was claimed under one lease holds under that lease only
 * (HoldRequest.requiredLease): once it has expired, a retry may take the key over
 * (drizzle/0015_lease_bound_claims.sql), so a hold under the instance's next lease could charge the
 * key twice. Such a call fails instead, charged nothing, and its key is released.
 */
export class LeaseChangedError extends Error {
  override name = "LeaseChangedError";
  constructor() {
    super("the instance lease this call's Idempotency-Key was claimed under expired before its hold; nothing was held");
  }
}

/** One operation's holds: granted all together, or none. */
export type HoldGroup = readonly HoldRequest[];

export type HoldOutcome =
  | { ok: true; entryId: string; balanceAfter: number }
  /** This hold's balance does not cover the group's total of it; `available` is what was there. */
  | { ok: false; reason: "insufficient"; available: number }
  | { ok: false; reason: "no-balance" }
  /** Only for holds with `authorize`: `subscription` is what the statement saw (undefined: it does not exist). */
  | { ok: false; reason: "unauthorized"; subscription: { ownerId: string; status: string } | undefined }
  /** This hold could be granted, but another hold of its group was refused. */
  | { ok: false; reason: "group-refused" };

interface OutcomeRow {
  ord: number | string;
  granted: boolean;
  allowed: boolean;
  before: number | null;
  balance_after: number | null;
  owner_id: string | null;
  status: string | null;
}

/** One hold as the statement reads it (one array per field): `g` its group, `bi` its balance's place in the key arrays. */
interface HoldRecord {
  ord: number;
  g: number;
  bi: number;
  amount: number;
  entry_id: string;
  operation: string;
  estimated: number;
  actor_id: string;
  actor_is_admin: boolean;
  admin_override: boolean;
  request_id: string;
  authorize: boolean;
}

/**
 * Runs one hold statement for `groups`; returns each group's outcomes, hold by hold. `instanceId` is
 * the holding instance's lease (src/recovery/instance-lease.ts): once it expires, the recovery pass
 * refunds these holds if they are still open; the statement is refused (LEASE_EXPIRED_SQLSTATE) if it
 * has expired already. Without one (tools, tests) only CHARGE_SETTLE_TIMEOUT refunds them.
 * `retry`: the same groups (same entry ids) were sent before and the answer was lost; groups that
 * committed then are answered as granted from their ledger entries instead of being held twice.
 */
export async function holdGroups(
  db: DbOrTx,
  groups: readonly HoldGroup[],
  instanceId: string | null = null,
  options: { retry?: boolean } = {},
): Promise<HoldOutcome[][]> {
  const records: HoldRecord[] = [];
  const balanceIndex = new Map<string, number>();
  const keys: { subscriptionId: string; creditType: string }[] = [];
  groups.forEach((group, g) => {
    for (const r of group) {
      const key = `${r.subscriptionId}\u0000${r.creditType}`;
      let bi = balanceIndex.get(key);
      if (bi === undefined) {
        keys.push({ subscriptionId: r.subscriptionId, creditType: r.creditType });
        bi = keys.length;
        balanceIndex.set(key, bi);
      }
      records.push({
        ord: records.length + 1,
        g: g + 1,
        bi,
        amount: r.amount,
        entry_id: r.entryId,
        operation: r.operation,
        estimated: r.estimated,
        actor_id: r.actorId,
        actor_is_admin: r.actorIsAdmin,
        admin_override: r.adminOverride,
        request_id: r.requestId,
        authorize: r.authorize,
      });
    }
  });
  if (records.length === 0) return groups.map(() => []);

  // The statement is the database function of drizzle/0010_charge_functions.sql: its plans are
  // cached per session, which a statement sent as text cannot have through a transaction-mode pooler.
  const column = <K extends keyof HoldRecord>(key: K) => sql.param(records.map((r) => r[key]));
  // credit_lease_guard (drizzle/0015_lease_bound_claims.sql) runs first, credit_hold taking the
  // lease from it: it refuses the statement when the lease has expired, and holds a lock that an
  // Idempotency-Key takeover waits for, so no hold of a dead call commits after a retry took its key.
  const rows = await queryRows<OutcomeRow>(
    db,
    sql`select h.* from credit_lease_guard(${instanceId}::uuid) as lease(instance_id)
        cross join lateral credit_hold(
          ${column("g")}::integer[], ${column("bi")}::integer[], ${column("amount")}::integer[], ${column("entry_id")}::uuid[],
          ${column("operation")}::text[], ${column("estimated")}::integer[], ${column("actor_id")}::text[],
          ${column("actor_is_admin")}::boolean[], ${column("admin_override")}::boolean[], ${column("request_id")}::text[],
          ${column("authorize")}::boolean[],
          ${sql.param(keys.map((k) => k.subscriptionId))}::uuid[], ${sql.param(keys.map((k) => k.creditType))}::text[],
          lease.instance_id, ${options.retry === true}) as h`,
  );

  const byOrd = new Map(rows.map((row) => [Number(row.ord), row]));
  return groupOutcomes(groups, records, byOrd);
}

/** Reads the statement's rows back into outcomes, group by group, hold by hold. */
function groupOutcomes(groups: readonly HoldGroup[], records: readonly HoldRecord[], byOrd: Map<number, OutcomeRow>): HoldOutcome[][] {
  const outcomes: HoldOutcome[][] = groups.map(() => []);
  for (const record of records) {
    const row = byOrd.get(record.ord);
    if (!row) throw new Error(`the hold statement returned no row for hold ${record.ord}`);
    const request = groups[record.g - 1][outcomes[record.g - 1].length];
    outcomes[record.g - 1].push(outcomeOf(request, row, groups[record.g - 1]));
  }
  return outcomes;
}

function outcomeOf(request: HoldRequest, row: OutcomeRow, group: HoldGroup): HoldOutcome {
  if (row.granted) return { ok: true, entryId: request.entryId, balanceAfter: Number(row.balance_after) };
  if (!row.allowed) {
    return {
      ok: false,
      reason: "unauthorized",
      subscription: row.owner_id === null ? undefined : { ownerId: row.owner_id, status: row.status ?? "" },
    };
  }
  const before = Number(row.before);
  if (before < 0) return { ok: false, reason: "no-balance" };
  if (before < groupTotal(group, request.subscriptionId, request.creditType)) return { ok: false, reason: "insufficient", available: before };
  return { ok: false, reason: "group-refused" };
}

/** What a group holds of one balance in all: the `required` of an INSUFFICIENT_CREDITS refusal. */
export function groupTotal(group: HoldGroup, subscriptionId: string, creditType: string): number {
  let total = 0;
  for (const r of group) if (r.subscriptionId === subscriptionId && r.creditType === creditType) total += r.amount;
  return total;
}
