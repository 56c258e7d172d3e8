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
 * Authorization can be folded in: a hold with `authorize` is granted only when its subscription
 * exists, is ACTIVE and its actor owns it or is an admin; otherwise its outcome carries what the
 * statement saw, so the caller raises the same errors in the same order as the charge path does.
 */
import { sql } from "drizzle-orm";
import { queryRows, type DbOrTx } from "../db/database.js";

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

/** One hold as the statement reads it (json_to_recordset): `g` its group, `bi` its balance's place in the key arrays. */
interface HoldRecord {
  ord: number;
  g: number;
  bi: number;
  subscription_id: string;
  credit_type: string;
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
 * refunds these holds if they are still open. Without one (tools, tests) only CHARGE_SETTLE_TIMEOUT does.
 */
export async function holdGroups(db: DbOrTx, groups: readonly HoldGroup[], instanceId: string | null = null): Promise<HoldOutcome[][]> {
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
        subscription_id: r.subscriptionId,
        credit_type: r.creditType,
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

  // The walk's state is one array of what is left per balance (-1: no such balance row), indexed by
  // `bi`; row g of the walk is the state after group g.
  const rows = await queryRows<OutcomeRow>(
    db,
    sql`
      with recursive req as (
        select * from json_to_recordset(${JSON.stringify(records)}::json) as r(
          ord int, g int, bi int, subscription_id uuid, credit_type text, amount int, entry_id uuid, operation text,
          estimated int, actor_id text, actor_is_admin boolean, admin_override boolean, request_id text, authorize boolean)
      ), checked as (
        select req.*, s.owner_id, s.status,
               coalesce(not req.authorize or (s.status = 'ACTIVE' and (s.owner_id = req.actor_id or req.actor_is_admin)), false) as allowed
          from req left join billing_subscriptions s on s.id = req.subscription_id
      ), keys as (
        select * from unnest(${sql.param(keys.map((k) => k.subscriptionId))}::uuid[], ${sql.param(keys.map((k) => k.creditType))}::text[])
               with ordinality as k(subscription_id, credit_type, bi)
      ), locked as materialized (
        select k.bi, b.balance
          from credit_balances b
          join keys k on b.subscription_id = k.subscription_id and b.credit_type = k.credit_type
         order by b.subscription_id, b.credit_type
           for update of b
      ), start as (
        -- expired: credits of expired grants the expiry pass has not removed yet; they are in the
        -- balance but no hold may count on them (drizzle/0005_grants.sql). Read once the rows are
        -- locked, so it sees every change committed before the lock.
        select array_agg(coalesce(l.balance, -1) order by k.bi) as state,
               array_agg(case when l.bi is null then 0 else credit_expired_remains(k.subscription_id, k.credit_type) end
                         order by k.bi) as expired
          from keys k left join locked l on l.bi = k.bi
      ), needs as (
        select g, bi, sum(amount)::int as need from checked group by g, bi
      ), grps as (
        select g, bool_and(allowed) as allowed from checked group by g
      ), walk (g, state, granted) as (
        select 0, state, false from start
        union all
        select w.g + 1,
               case when f.fits
                    then array(select w.state[i] - coalesce((select n.need from needs n where n.g = w.g + 1 and n.bi = i), 0)
                                 from generate_subscripts(w.state, 1) as i order by i)
                    else w.state end,
               f.fits
          from walk w
          cross join start s
          cross join lateral (
            select gr.allowed and not exists (
                     select 1 from needs n
                      where n.g = w.g + 1 and (w.state[n.bi] < 0 or w.state[n.bi] - s.expired[n.bi] < n.need)
                   ) as fits
              from grps gr where gr.g = w.g + 1
          ) f
      ), granted as (
        select c.*,
               (b.state[c.bi] - sum(c.amount) over (partition by c.g, c.bi order by c.ord))::int as balance_after
          from checked c
          join walk a on a.g = c.g and a.granted
          join walk b on b.g = c.g - 1
      ), final as (
        select state from walk order by g desc limit 1
      ), debited as (
        -- The rows are locked above, so writing the value computed from them loses no concurrent change.
        update credit_balances b
           set balance = f.state[k.bi], updated_at = now()
          from keys k, locked l, final f
         where l.bi = k.bi and b.subscription_id = k.subscription_id and b.credit_type = k.credit_type
           and f.state[k.bi] <> l.balance
      ), entries as (
        insert into credit_ledger
          (subscription_id, id, credit_type, kind, amount, balance_after, operation, estimated, actor_id, admin_override, request_id)
        select subscription_id, entry_id, credit_type, 'DEBIT', -amount, balance_after, operation, estimated, actor_id,
               admin_override, request_id
          from granted
         order by ord
      ), pending as (
        insert into pending_charges (subscription_id, entry_id, credit_type, amount, operation, actor_id, request_id, instance_id)
        select subscription_id, entry_id, credit_type, amount, operation, actor_id, request_id, ${instanceId}::uuid from granted
      )
      -- Both reported net of expired remains: what the caller may still spend (the ledger keeps the real balance).
      select c.ord, a.granted, c.allowed, b.state[c.bi] - s.expired[c.bi] as before, g.balance_after - s.expired[c.bi] as balance_after,
             c.owner_id, c.status
        from checked c
        join walk a on a.g = c.g
        join walk b on b.g = c.g - 1
        cross join start s
        left join granted g on g.ord = c.ord
       order by c.ord`,
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
