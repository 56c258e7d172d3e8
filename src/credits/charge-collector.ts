/**
 * What the charge path records during one request, for extensions.credits, and the holds it must
 * settle once the operation's result is known. The extensions plugin only writes the record out; it
 * computes nothing (DESIGN.md, convention 3).
 */
import type { HeldCall } from "./charge-phases.js";

/**
 * One charge as extensions.credits reports it (DESIGN.md, "`extensions.credits`"), keys in that
 * order, and the extension itself: the types clients import from `graphql-credits/client`
 * (src/client/credits-extension.ts), defined there once so the server sends what clients are told.
 */
export type { CreditCharge as ChargeRecord, CreditsExtension } from "../client/credits-extension.js";
import type { CreditCharge as ChargeRecord, CreditsExtension } from "../client/credits-extension.js";

export class ChargeCollector {
  private readonly charges: ChargeRecord[] = [];
  private readonly remaining = new Map<string, Map<string, number>>();
  private meteredFieldRan = false;
  /** Holds of this request still to settle, in the order they were made. */
  readonly held: HeldCall[] = [];
  /** Holds made before the operation ran, by response path ("a.b"): the fields find theirs here. */
  readonly upfront = new Map<string, HeldCall>();
  /**
   * Calls settled at a cost whose result only this response carries (no Idempotency-Key kept it for
   * a retry): refunded if the response never reaches the client (charge-phases.ts, step 9).
   */
  readonly paidForDelivery: HeldCall[] = [];
  /** Set once the host said the response will not reach the client: calls settling after are refunded. */
  responseLost = false;

  /** Called as soon as a metered field is charged or refused, so the extension appears either way. */
  markMeteredField(): void {
    this.meteredFieldRan = true;
  }

  /** True once any metered field was charged or refused in this request. */
  get touched(): boolean {
    return this.meteredFieldRan;
  }

  addCharge(charge: ChargeRecord): void {
    this.charges.push(charge);
    this.noteBalance(charge.subscriptionId, charge.type, charge.remaining);
  }

  /** True when this request already noted a balance of the subscription's credit type. */
  knowsBalance(subscriptionId: string, type: string): boolean {
    return this.remaining.get(subscriptionId)?.has(type) ?? false;
  }

  /** The latest known balance of a subscription's credit type after this request's changes. */
  noteBalance(subscriptionId: string, type: string, balance: number): void {
    let types = this.remaining.get(subscriptionId);
    if (!types) {
      types = new Map();
      this.remaining.set(subscriptionId, types);
    }
    types.set(type, balance);
  }

  toExtension(): CreditsExtension | undefined {
    if (!this.meteredFieldRan) return undefined;
    const remaining: Record<string, Record<string, number>> = {};
    for (const [subscriptionId, types] of this.remaining) remaining[subscriptionId] = Object.fromEntries(types);
    // A charge's `remaining` is the balance after the LAST change this request made to it (DESIGN.md),
    // not after its own settlement: in an operation of several fields on one balance, every charge
    // reports what the top-level `remaining` reports.
    const charges = this.charges.map((c) => ({ ...c, remaining: remaining[c.subscriptionId]?.[c.type] ?? c.remaining }));
    return { charges, remaining };
  }
}
