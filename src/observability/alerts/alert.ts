/** What an alert is, before and after it is stored. Kinds are the credit_alerts CHECK's closed set. */
import type { AlertKindValue } from "../../db/schema/alerts.js";

export type AlertKind = AlertKindValue;

export interface NewAlert {
  kind: AlertKind;
  /** Null for alerts about no particular subscription. */
  subscriptionId: string | null;
  message: string;
  details: Record<string, unknown>;
}

export interface AlertRecord extends NewAlert {
  id: string;
  /** Orders alerts for newest-first pagination; it only grows. */
  seq: number;
  createdAt: Date;
}
