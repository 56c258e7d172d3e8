/**
 * What the charge wrapper records during one request, for extensions.credits. The extensions plugin
 * only writes this out; it computes nothing (DESIGN.md, convention 3).
 */
export interface ChargeRecord {
  path: string[];
  operation: string;
  subscriptionId: string;
  type: string;
  estimated: number;
  charged: number;
  refunded: number;
  remaining: number;
  entryId: string;
  adminOverride: boolean;
  fallback: boolean;
  /** Present (true) only on a charge replayed from an Idempotency-Key. */
  replayed?: boolean;
}

export interface CreditsExtension {
  charges: ChargeRecord[];
  remaining: Record<string, Record<string, number>>;
}

export class ChargeCollector {
  private readonly charges: ChargeRecord[] = [];
  private readonly remaining = new Map<string, Map<string, number>>();
  private meteredFieldRan = false;

  /** Called as soon as a metered field starts, so the extension appears even when it is refused. */
  markMeteredField(): void {
    this.meteredFieldRan = true;
  }

  addCharge(charge: ChargeRecord): void {
    this.charges.push(charge);
    this.noteBalance(charge.subscriptionId, charge.type, charge.remaining);
  }

  /** Records a refund of a charge recorded earlier in this request. */
  markRefunded(entryId: string, refunded: number, remaining: number): void {
    const charge = this.charges.find((c) => c.entryId === entryId);
    if (!charge) return;
    charge.refunded = refunded;
    charge.remaining = remaining;
    this.noteBalance(charge.subscriptionId, charge.type, remaining);
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
    return { charges: this.charges.map((c) => ({ ...c })), remaining };
  }
}
