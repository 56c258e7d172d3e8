/**
 * The admin's subscription search: every subscription, newest first (created_at, then id), narrowed
 * by owner, status, plan, or a prefix of the subscription id or of the owner id, in keyset pages.
 *
 * A page after a cursor is "older than the cursor's subscription", read from that row itself, so
 * subscriptions opened while an admin pages through appear at the top and never shift later pages.
 * Indexes (drizzle/0007): billing_subscriptions_created_idx serves the order; an id prefix becomes a
 * range of the primary key; an owner prefix is a LIKE served by billing_subscriptions_owner_prefix_idx
 * (text_pattern_ops, so it works whatever the database's collation).
 */
import { and, desc, eq, or, sql, type SQL } from "drizzle-orm";
import type { DbOrTx } from "../db/database.js";
import { billingSubscriptions, type SubscriptionStatusValue } from "../db/schema/subscriptions.js";
import type { SubscriptionRecord } from "./subscription-store.js";

export interface SubscriptionSearch {
  ownerId?: string;
  status?: SubscriptionStatusValue;
  plan?: string;
  /** A prefix of a subscription id or of an owner id. */
  prefix?: string;
  /** Page size; the caller has checked its bounds. */
  first: number;
  /** Only subscriptions older than this one (the previous page's last). */
  afterId?: string;
}

export interface SubscriptionPage {
  subscriptions: SubscriptionRecord[];
  hasNextPage: boolean;
}

/**
 * The uuid range [low, high] of every id that starts with `prefix`, or undefined when the text
 * cannot start a uuid (so only owner ids can match it). Hyphens must stand where a uuid has them.
 */
export function uuidPrefixRange(prefix: string): { low: string; high: string } | undefined {
  const text = prefix.toLowerCase();
  if (text.length === 0 || text.length > 36) return undefined;
  const layout = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
  for (let i = 0; i < text.length; i++) {
    const ok = layout[i] === "-" ? text[i] === "-" : /[0-9a-f]/.test(text[i]);
    if (!ok) return undefined;
  }
  const hex = text.replaceAll("-", "");
  const format = (digits: string) =>
    `${digits.slice(0, 8)}-${digits.slice(8, 12)}-${digits.slice(12, 16)}-${digits.slice(16, 20)}-${digits.slice(20)}`;
  return { low: format(hex.padEnd(32, "0")), high: format(hex.padEnd(32, "f")) };
}

/** LIKE's own characters in `text` escaped (with the default escape, a backslash). */
function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

function prefixCondition(prefix: string): SQL {
  const owner = sql`${billingSubscriptions.ownerId} like ${`${escapeLike(prefix)}%`}`;
  const range = uuidPrefixRange(prefix);
  if (!range) return owner;
  return or(sql`${billingSubscriptions.id} between ${range.low}::uuid and ${range.high}::uuid`, owner)!;
}

export async function searchSubscriptions(db: DbOrTx, search: SubscriptionSearch): Promise<SubscriptionPage> {
  const conditions: SQL[] = [];
  if (search.ownerId !== undefined) conditions.push(eq(billingSubscriptions.ownerId, search.ownerId));
  if (search.status !== undefined) conditions.push(eq(billingSubscriptions.status, search.status));
  if (search.plan !== undefined) conditions.push(eq(billingSubscriptions.plan, search.plan));
  if (search.prefix !== undefined) conditions.push(prefixCondition(search.prefix));
  if (search.afterId !== undefined) {
    conditions.push(
      sql`(${billingSubscriptions.createdAt}, ${billingSubscriptions.id}) <
          (select c.created_at, c.id from billing_subscriptions c where c.id = ${search.afterId}::uuid)`,
    );
  }
  // One row more than the page tells whether another page follows, without a count.
  const rows = await db
    .select()
    .from(billingSubscriptions)
    .where(conditions.length > 0 ? and(...conditions) : undefined)
    .orderBy(desc(billingSubscriptions.createdAt), desc(billingSubscriptions.id))
    .limit(search.first + 1);
  return { subscriptions: rows.slice(0, search.first), hasNextPage: rows.length > search.first };
}
